//! Host comparison tests.
