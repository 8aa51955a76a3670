//! A small multiple-precision float for the transcendental instructions.
