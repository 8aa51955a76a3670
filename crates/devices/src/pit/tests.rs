//! The 8254's tests: every mode's waveform against the datasheet's timing
//! figures, latching and read-back, gates, port 0x61, and O(1) ticking
//! checked against single steps.

use super::*;

/// Test double for the IRQ0 wire: its level and how many times it rose.
#[derive(Clone, Debug, Default)]
struct Probe {
    high: bool,
    rises: u32,
}
impl IrqLine for Probe {
    fn set_level(&mut self, high: bool) {
        self.rises += u32::from(high && !self.high);
        self.high = high;
    }
}

fn pit() -> Pit<Probe> {
    Pit::new(Probe::default())
}

/// Control word for counter `ch`, LSB then MSB, `mode`, binary.
fn program(p: &mut Pit<Probe>, ch: u8, mode: u8, count: u16) {
    p.write(OFF_CONTROL, ch << 6 | RW_WORD << 4 | mode << 1);
    p.write(u16::from(ch), count as u8);
    p.write(u16::from(ch), (count >> 8) as u8);
}

/// Latches and reads counter `ch` (LSB/MSB access).
fn latched(p: &mut Pit<Probe>, ch: u8) -> u16 {
    p.write(OFF_CONTROL, ch << 6);
    let lo = p.read(u16::from(ch));
    let hi = p.read(u16::from(ch));
    u16::from_le_bytes([lo, hi])
}

/// OUT and CE after each of `clocks` single clock pulses.
fn trace(p: &mut Pit<Probe>, ch: u8, clocks: usize) -> Vec<(bool, u16)> {
    (0..clocks)
        .map(|_| {
            p.tick(Ticks(1));
            (p.out(usize::from(ch)), latched(p, ch))
        })
        .collect()
}

const H: bool = true;
const L: bool = false;

#[test]
fn mode0_interrupt_on_terminal_count() {
    let mut p = pit();
    program(&mut p, 0, 0, 4);
    assert!(!p.out(0), "OUT low after the control word");
    // Datasheet figure (mode 0, LSB = 4): 4 3 2 1 0 FF, OUT high at 0.
    let t = trace(&mut p, 0, 6);
    assert_eq!(t, [(L, 4), (L, 3), (L, 2), (L, 1), (H, 0), (H, 0xFFFF)]);
    assert_eq!(p.irq().rises, 1);
    assert!(p.irq().high, "OUT stays high until reprogrammed");
    p.tick(Ticks(200_000));
    assert!(p.out(0));
    assert_eq!(p.irq().rises, 1, "no second interrupt while wrapping");
}

#[test]
fn mode0_gate_low_suspends_counting() {
    let mut p = pit();
    p.write_port61(P61_GATE2);
    program(&mut p, 2, 0, 3);
    p.tick(Ticks(2)); // load, then 2
    assert_eq!(latched(&mut p, 2), 2);
    p.write_port61(0);
    p.tick(Ticks(5));
    assert_eq!(latched(&mut p, 2), 2, "held while GATE is low");
    assert!(!p.out(2));
    p.write_port61(P61_GATE2);
    let t = trace(&mut p, 2, 3);
    assert_eq!(t, [(L, 1), (H, 0), (H, 0xFFFF)]);
}

#[test]
fn mode0_first_byte_stops_count_and_lowers_out() {
    let mut p = pit();
    program(&mut p, 0, 0, 2);
    p.tick(Ticks(3));
    assert!(p.out(0));
    p.write(OFF_COUNTER0, 5); // LSB of a new count
    assert!(!p.out(0), "OUT low at once");
    let held = latched(&mut p, 0);
    p.tick(Ticks(10));
    assert_eq!(latched(&mut p, 0), held, "counting disabled");
    p.write(OFF_COUNTER0, 0); // MSB: count 5 loads on the next clock
    let t = trace(&mut p, 0, 6);
    assert_eq!(t, [(L, 5), (L, 4), (L, 3), (L, 2), (L, 1), (H, 0)]);
}

#[test]
fn mode0_new_count_restarts() {
    let mut p = pit();
    p.write(OFF_CONTROL, 0b0001_0000); // counter 0, LSB only, mode 0
    p.write(OFF_COUNTER0, 10);
    p.tick(Ticks(4));
    p.write(OFF_COUNTER0, 2);
    let mut t = Vec::new();
    for _ in 0..3 {
        p.tick(Ticks(1));
        p.write(OFF_CONTROL, 0x00);
        t.push((p.out(0), p.read(OFF_COUNTER0)));
    }
    assert_eq!(t, [(L, 2), (L, 1), (H, 0)], "one byte per latched read");
}

#[test]
fn mode1_hardware_retriggerable_one_shot() {
    let mut p = pit();
    program(&mut p, 2, 1, 3);
    assert!(p.out(2), "OUT high after the control word");
    p.tick(Ticks(5));
    assert!(p.out(2), "nothing happens without a trigger");
    p.set_gate(2, true);
    // Datasheet figure (mode 1, LSB = 3): 3 2 1 0 FF, OUT low for 3 clocks.
    let t = trace(&mut p, 2, 5);
    assert_eq!(t, [(L, 3), (L, 2), (L, 1), (H, 0), (H, 0xFFFF)]);
    // Retrigger in the middle of a pulse: the one-shot restarts.
    p.set_gate(2, false);
    p.set_gate(2, true);
    p.tick(Ticks(2));
    assert_eq!((p.out(2), latched(&mut p, 2)), (L, 2));
    p.set_gate(2, false);
    p.set_gate(2, true);
    let t = trace(&mut p, 2, 4);
    assert_eq!(t, [(L, 3), (L, 2), (L, 1), (H, 0)]);
}

#[test]
fn mode1_new_count_waits_for_the_next_trigger() {
    let mut p = pit();
    program(&mut p, 2, 1, 3);
    p.set_gate(2, true);
    p.tick(Ticks(1));
    program_count_only(&mut p, 2, 5);
    assert!(p.state().counters[2].null_count);
    let t = trace(&mut p, 2, 3);
    assert_eq!(t, [(L, 2), (L, 1), (H, 0)], "current one-shot unaffected");
    p.set_gate(2, false);
    p.set_gate(2, true);
    p.tick(Ticks(1));
    assert_eq!(latched(&mut p, 2), 5);
    assert!(!p.state().counters[2].null_count);
}

fn program_count_only(p: &mut Pit<Probe>, ch: u8, count: u16) {
    p.write(u16::from(ch), count as u8);
    p.write(u16::from(ch), (count >> 8) as u8);
}

#[test]
fn mode2_rate_generator() {
    let mut p = pit();
    program(&mut p, 0, 2, 3);
    assert!(p.out(0));
    assert_eq!(
        p.irq().rises,
        1,
        "the control word raised OUT from mode 0's low"
    );
    // Datasheet figure (mode 2, LSB = 3): 3 2 1 3 2 1, OUT low at 1.
    let t = trace(&mut p, 0, 7);
    assert_eq!(t, [(H, 3), (H, 2), (L, 1), (H, 3), (H, 2), (L, 1), (H, 3)]);
    assert_eq!(p.irq().rises, 1 + 2, "a rising edge per period");
}

#[test]
fn mode2_new_count_takes_effect_at_the_end_of_the_period() {
    let mut p = pit();
    program(&mut p, 0, 2, 4);
    p.tick(Ticks(2)); // 4 3
    program_count_only(&mut p, 0, 2);
    let t = trace(&mut p, 0, 6);
    assert_eq!(t, [(H, 2), (L, 1), (H, 2), (L, 1), (H, 2), (L, 1)]);
}

#[test]
fn mode2_gate_low_forces_out_high_and_rising_gate_reloads() {
    let mut p = pit();
    p.write_port61(P61_GATE2);
    program(&mut p, 2, 2, 3);
    p.tick(Ticks(3));
    assert!(!p.out(2), "in the low pulse");
    p.write_port61(0);
    assert!(p.out(2), "low GATE forces OUT high at once");
    p.tick(Ticks(7));
    assert_eq!(latched(&mut p, 2), 1, "count held");
    p.write_port61(P61_GATE2);
    let t = trace(&mut p, 2, 4);
    assert_eq!(
        t,
        [(H, 3), (H, 2), (L, 1), (H, 3)],
        "reloaded on the next clock"
    );
}

#[test]
fn mode3_square_wave_even_count() {
    let mut p = pit();
    program(&mut p, 0, 3, 4);
    // Datasheet figure (mode 3, LSB = 4): 4 2 4 2, OUT toggling.
    let t = trace(&mut p, 0, 6);
    assert_eq!(t, [(H, 4), (H, 2), (L, 4), (L, 2), (H, 4), (H, 2)]);
    assert_eq!(p.irq().rises, 1 + 1);
}

#[test]
fn mode3_square_wave_odd_count() {
    let mut p = pit();
    program(&mut p, 0, 3, 5);
    // Datasheet figure (mode 3, LSB = 5): 5 4 2 5 2; high (N+1)/2, low (N-1)/2.
    let t = trace(&mut p, 0, 10);
    assert_eq!(
        t,
        [
            (H, 5),
            (H, 4),
            (H, 2),
            (L, 5),
            (L, 2),
            (H, 5),
            (H, 4),
            (H, 2),
            (L, 5),
            (L, 2)
        ]
    );
    program(&mut p, 0, 3, 7);
    let t = trace(&mut p, 0, 7);
    assert_eq!(t, [(H, 7), (H, 6), (H, 4), (H, 2), (L, 7), (L, 4), (L, 2)]);
}

#[test]
fn mode3_new_count_waits_for_the_half_cycle() {
    let mut p = pit();
    program(&mut p, 0, 3, 8);
    p.tick(Ticks(2)); // 8 6, high
    program_count_only(&mut p, 0, 4);
    let t = trace(&mut p, 0, 6);
    // The high half of 8 finishes (4 2), then the low half of 4.
    assert_eq!(t, [(H, 4), (H, 2), (L, 4), (L, 2), (H, 4), (H, 2)]);
}

#[test]
fn mode_6_and_7_are_modes_2_and_3() {
    let mut p = pit();
    p.write(OFF_CONTROL, 0b0011_1100); // M = 110
    assert_eq!(p.state().counters[0].mode(), 2);
    p.write(OFF_CONTROL, 0b0011_1110); // M = 111
    assert_eq!(p.state().counters[0].mode(), 3);
    p.write(OFF_CONTROL, 0b1100_0010 & !RB_NO_STATUS);
    assert_eq!(p.read(0) & 0x0E, 0x0E, "status shows the bits as written");
}

#[test]
fn mode4_software_triggered_strobe() {
    let mut p = pit();
    program(&mut p, 0, 4, 3);
    assert!(p.out(0));
    // Datasheet figure (mode 4, LSB = 3): 3 2 1 0 FF, OUT low for one clock at 0.
    let t = trace(&mut p, 0, 6);
    assert_eq!(
        t,
        [(H, 3), (H, 2), (H, 1), (L, 0), (H, 0xFFFF), (H, 0xFFFE)]
    );
    assert_eq!(p.irq().rises, 1 + 1);
    p.tick(Ticks(1 << 20));
    assert_eq!(p.irq().rises, 1 + 1, "a single strobe");
}

#[test]
fn mode5_hardware_triggered_strobe() {
    let mut p = pit();
    program(&mut p, 2, 5, 3);
    p.tick(Ticks(4));
    assert!(p.out(2));
    p.set_gate(2, true);
    let t = trace(&mut p, 2, 5);
    assert_eq!(t, [(H, 3), (H, 2), (H, 1), (L, 0), (H, 0xFFFF)]);
    p.set_gate(2, false);
    p.set_gate(2, true); // retrigger
    let t = trace(&mut p, 2, 5);
    assert_eq!(t, [(H, 3), (H, 2), (H, 1), (L, 0), (H, 0xFFFF)]);
}

#[test]
fn bcd_counting_and_zero_as_ten_thousand() {
    let mut p = pit();
    p.write(OFF_CONTROL, 0b0011_0001); // counter 0, word, mode 0, BCD
    p.write(OFF_COUNTER0, 0x12);
    p.write(OFF_COUNTER0, 0x00); // 0012 BCD
    let t = trace(&mut p, 0, 4);
    assert_eq!(t, [(L, 0x12), (L, 0x11), (L, 0x10), (L, 0x09)]);
    p.write(OFF_CONTROL, 0b0011_0101); // mode 2, BCD
    p.write(OFF_COUNTER0, 0);
    p.write(OFF_COUNTER0, 0);
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(10_001)));
    let t = trace(&mut p, 0, 2);
    assert_eq!(t, [(H, 0x0000), (H, 0x9999)]);
    p.tick(Ticks(9_998));
    assert_eq!((p.out(0), latched(&mut p, 0)), (L, 0x0001));
}

#[test]
fn binary_zero_is_65536() {
    let mut p = pit();
    program(&mut p, 0, 2, 0);
    let base = p.irq().rises;
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(65_537)));
    p.tick(Ticks(1));
    assert_eq!(latched(&mut p, 0), 0);
    p.tick(Ticks(1));
    assert_eq!(latched(&mut p, 0), 0xFFFF);
    p.tick(Ticks(65_533));
    assert_eq!((p.out(0), latched(&mut p, 0)), (H, 2));
    p.tick(Ticks(1));
    assert_eq!((p.out(0), latched(&mut p, 0)), (L, 1));
    p.tick(Ticks(1));
    assert_eq!(p.irq().rises, base + 1);
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(65_536)));
}

#[test]
fn access_modes_lsb_only_and_msb_only() {
    let mut p = pit();
    p.write(OFF_CONTROL, 0b0001_0100); // LSB only, mode 2
    p.write(OFF_COUNTER0, 0x34);
    p.tick(Ticks(1));
    assert_eq!(p.read(OFF_COUNTER0), 0x34);
    assert_eq!(p.read(OFF_COUNTER0), 0x34, "no flip-flop with one byte");
    p.write(OFF_CONTROL, 0b0010_0100); // MSB only
    p.write(OFF_COUNTER0, 0x12);
    p.tick(Ticks(1));
    assert_eq!(p.read(OFF_COUNTER0), 0x12);
    p.tick(Ticks(1));
    p.write(OFF_CONTROL, 0b0000_0000); // latch counter 0 at 0x11FF
    p.tick(Ticks(0x100));
    assert_eq!(p.read(OFF_COUNTER0), 0x11, "MSB of the latched 0x11FF");
    assert_eq!(p.read(OFF_COUNTER0), 0x10, "latch released, live MSB");
}

#[test]
fn live_reads_use_the_flip_flop_and_writes_interleave() {
    let mut p = pit();
    program(&mut p, 0, 2, 0x1234);
    p.tick(Ticks(1));
    assert_eq!(p.read(OFF_COUNTER0), 0x34);
    p.write(OFF_COUNTER0, 0x78); // the write flip-flop is separate
    assert_eq!(p.read(OFF_COUNTER0), 0x12);
    p.write(OFF_COUNTER0, 0x56);
    assert_eq!(p.state().counters[0].cr, 0x5678);
}

#[test]
fn latch_freezes_the_count_while_counting() {
    let mut p = pit();
    program(&mut p, 0, 2, 1000);
    p.tick(Ticks(11));
    p.write(OFF_CONTROL, 0x00);
    p.tick(Ticks(100));
    p.write(OFF_CONTROL, 0x00); // a second latch before reading is ignored
    assert_eq!(p.read(OFF_COUNTER0), (990 & 0xFF) as u8);
    p.tick(Ticks(100));
    assert_eq!(p.read(OFF_COUNTER0), (990 >> 8) as u8);
    assert_eq!(latched(&mut p, 0), 790);
}

#[test]
fn read_back_status_and_count_of_several_counters() {
    let mut p = pit();
    program(&mut p, 0, 3, 100);
    program(&mut p, 2, 0, 50);
    p.write(OFF_CONTROL, 0b1100_1110); // read-back counters 0-2 (count + status)
    let s0 = p.state().counters[0].status();
    assert_eq!(s0, STATUS_OUT | STATUS_NULL_COUNT | 0x36);
    p.tick(Ticks(5));
    assert_eq!(p.read(OFF_COUNTER0), STATUS_OUT | STATUS_NULL_COUNT | 0x36);
    // Latched before the loading CLK: CE reads as the count being loaded.
    assert_eq!(p.read(OFF_COUNTER0), 100);
    assert_eq!(p.read(OFF_COUNTER0), 0);
    assert_eq!(
        p.read(OFF_COUNTER2),
        STATUS_NULL_COUNT | 0x30,
        "mode 0, OUT low"
    );
    p.read(OFF_COUNTER2);
    p.read(OFF_COUNTER2);
    // Counter 1 was selected too: never programmed, its status latched.
    assert_eq!(p.read(OFF_COUNTER1), 0x30);
    // Status only, after loading: null count clear.
    p.write(OFF_CONTROL, 0b1110_0010);
    assert_eq!(p.read(OFF_COUNTER0), STATUS_OUT | 0x36);
    // Count only of counter 2.
    p.write(OFF_CONTROL, 0b1101_1000);
    assert_eq!(
        latched_bytes(&mut p, 2),
        50,
        "GATE2 low: loaded, not counting"
    );
}

fn latched_bytes(p: &mut Pit<Probe>, ch: u16) -> u16 {
    let lo = p.read(ch);
    u16::from_le_bytes([lo, p.read(ch)])
}

#[test]
fn status_read_first_whatever_the_latch_order() {
    let mut p = pit();
    program(&mut p, 0, 2, 0x0203);
    p.tick(Ticks(1));
    p.write(OFF_CONTROL, 0x00); // counter latch
    p.write(OFF_CONTROL, 0b1110_0010); // then status
    p.write(OFF_CONTROL, 0b1100_0010); // both again: both ignored
    assert_eq!(p.read(OFF_COUNTER0), STATUS_OUT | 0x34);
    assert_eq!(latched_bytes(&mut p, 0), 0x0203);
    assert_eq!(p.read(OFF_COUNTER0), 0x03, "live again");
}

#[test]
fn null_count_follows_writes_and_loads() {
    let mut p = pit();
    p.write(OFF_CONTROL, 0x34);
    let null = |p: &Pit<Probe>| p.state().counters[0].null_count;
    assert!(null(&p), "set by the control word");
    p.write(OFF_COUNTER0, 10);
    p.write(OFF_COUNTER0, 0);
    assert!(null(&p));
    p.tick(Ticks(1));
    assert!(!null(&p), "cleared when CR reaches CE");
    program_count_only(&mut p, 0, 20);
    assert!(null(&p), "mode 2: waits for the end of the period");
    p.tick(Ticks(9)); // 10 9 ... 1
    assert!(null(&p));
    p.tick(Ticks(1));
    assert!(!null(&p));
    assert_eq!(latched(&mut p, 0), 20);
}

#[test]
fn linux_pit_calibration_on_channel_2() {
    // arch/x86/kernel/tsc.c pit_calibrate_tsc: gate high, speaker off,
    // mode 0 on counter 2, then poll port 0x61 bit 5.
    let mut p = pit();
    let v = (p.read_port61() & !P61_SPEAKER_DATA) | P61_GATE2;
    p.write_port61(v);
    p.write(OFF_CONTROL, 0xB0);
    let latch = 11_931u16; // 10 ms
    p.write(OFF_COUNTER2, latch as u8);
    p.write(OFF_COUNTER2, (latch >> 8) as u8);
    assert_eq!(p.read_port61() & P61_OUT2, 0);
    p.tick(Ticks(u64::from(latch)));
    assert_eq!(p.read_port61() & P61_OUT2, 0);
    p.tick(Ticks(1));
    assert_eq!(p.read_port61() & P61_OUT2, P61_OUT2);
    assert!(!p.speaker_output());
    assert_eq!(p.irq().rises, 0, "counter 2 does not drive IRQ0");
}

#[test]
fn port61_bits() {
    let mut p = pit();
    p.write_port61(0xFF);
    assert_eq!(p.state().port61, 0xFF, "the whole byte is kept");
    assert_eq!(p.read_port61() & 0xCF, 0x0F, "bits 6-7 read 0");
    program(&mut p, 2, 3, 4);
    p.tick(Ticks(1));
    assert!(p.speaker_output());
    p.tick(Ticks(2));
    assert!(!p.speaker_output());
    let mut q = pit();
    let r0 = q.read_port61() & P61_REFRESH;
    q.tick(Ticks(REFRESH_TICKS - 1));
    assert_eq!(q.read_port61() & P61_REFRESH, r0);
    q.tick(Ticks(1));
    assert_ne!(q.read_port61() & P61_REFRESH, r0, "toggles every 15 us");
    let mut port = Port61(&mut q);
    port.write(0, 0x03);
    assert_eq!(port.read(0) & 0x0F, 0x03);
}

#[test]
fn modes_1_and_5_never_trigger_on_counter_0() {
    let mut p = pit();
    program(&mut p, 0, 1, 10);
    p.tick(Ticks(1000));
    assert!(p.out(0));
    assert_eq!(
        p.ticks_until_next_irq(),
        None,
        "GATE0 is tied high: no edge"
    );
    program(&mut p, 0, 5, 10);
    p.tick(Ticks(1000));
    assert_eq!(p.ticks_until_next_irq(), None);
}

#[test]
fn mode5_new_count_waits_for_the_next_trigger() {
    let mut p = pit();
    program(&mut p, 2, 5, 4);
    p.set_gate(2, true);
    p.tick(Ticks(2));
    program_count_only(&mut p, 2, 2);
    let t = trace(&mut p, 2, 4);
    assert_eq!(
        t,
        [(H, 2), (H, 1), (L, 0), (H, 0xFFFF)],
        "old count runs on"
    );
    p.set_gate(2, false);
    p.set_gate(2, true);
    let t = trace(&mut p, 2, 4);
    assert_eq!(t, [(H, 2), (H, 1), (L, 0), (H, 0xFFFF)]);
}

#[test]
fn mode3_gate_low_holds_out_high() {
    let mut p = pit();
    p.write_port61(P61_GATE2);
    program(&mut p, 2, 3, 4);
    p.tick(Ticks(3));
    assert!(!p.out(2));
    p.write_port61(0);
    assert!(p.out(2));
    p.tick(Ticks(100));
    assert!(p.out(2));
    p.write_port61(P61_GATE2);
    let t = trace(&mut p, 2, 3);
    assert_eq!(t, [(H, 4), (H, 2), (L, 4)]);
}

#[test]
fn mode3_in_bcd() {
    let mut p = pit();
    p.write(OFF_CONTROL, 0b0011_0111); // mode 3, BCD
    p.write(OFF_COUNTER0, 0x10);
    p.write(OFF_COUNTER0, 0x00); // 10 decimal
    let t = trace(&mut p, 0, 6);
    assert_eq!(
        t,
        [
            (H, 0x10),
            (H, 0x08),
            (H, 0x06),
            (H, 0x04),
            (H, 0x02),
            (L, 0x10)
        ]
    );
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(5)));
}

#[test]
fn control_word_discards_unread_latches() {
    let mut p = pit();
    program(&mut p, 0, 2, 0x0102);
    p.tick(Ticks(1));
    p.write(OFF_CONTROL, 0b1100_0010);
    p.write(OFF_CONTROL, 0x34);
    program_count_only(&mut p, 0, 0x0304);
    p.tick(Ticks(1));
    assert_eq!(p.read(OFF_COUNTER0), 0x04, "live LSB, not the old status");
}

#[test]
fn gates_of_counters_0_and_1_are_high() {
    let p = pit();
    assert!(p.state().counters[0].gate && p.state().counters[1].gate);
    assert!(!p.state().counters[2].gate);
}

#[test]
fn ticks_until_next_irq_matches_single_stepping() {
    let mut p = pit();
    assert_eq!(p.ticks_until_next_irq(), None, "never programmed");
    program(&mut p, 0, 3, 10);
    let base = p.irq().rises;
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(11)));
    p.tick(Ticks(3));
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(8)));
    p.tick(Ticks(7));
    assert_eq!(p.irq().rises, base);
    p.tick(Ticks(1));
    assert_eq!(p.irq().rises, base + 1);
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(10)));
    program(&mut p, 0, 0, 5);
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(6)));
    p.tick(Ticks(6));
    assert_eq!(p.ticks_until_next_irq(), None, "mode 0 fires once");
}

#[test]
fn a_huge_tick_is_exact_and_fast() {
    let mut p = pit();
    program(&mut p, 0, 3, 0); // the BIOS's 18.2 Hz tick
    let base = p.irq().rises;
    let n = 1_000_000_000_000u64;
    p.tick(Ticks(n));
    // One clock loads; then (n - 1) mod 65536 clocks into the period.
    let q = (n - 1) % 65_536;
    let (out, ce) = if q < 32_768 {
        (true, 65_536 - 2 * q)
    } else {
        (false, 65_536 - 2 * (q - 32_768))
    };
    assert_eq!(
        (p.out(0), u64::from(latched(&mut p, 0))),
        (out, ce % 65_536)
    );
    assert_eq!(
        p.irq().rises,
        base + 1,
        "one edge reported for many periods"
    );
    assert_eq!(p.ticks_until_next_irq(), Some(Ticks(65_536 - q)));
    // Splitting the time anywhere gives the same state.
    let mut a = pit();
    let mut b = pit();
    for x in [&mut a, &mut b] {
        program(x, 0, 0, 1234);
        program(x, 2, 4, 0);
    }
    a.tick(Ticks(n));
    b.tick(Ticks(n / 3));
    b.tick(Ticks(n - n / 3));
    assert_eq!(a.state(), b.state());
    let expect = ((1234 + 65_536 - (n - 1) % 65_536) % 65_536) as u16;
    assert_eq!(latched(&mut a, 0), expect);
    assert_eq!(latched(&mut b, 0), expect);
    // u64::MAX ticks do not overflow.
    a.tick(Ticks(u64::MAX));
    b.tick(Ticks(u64::MAX));
    assert_eq!(a.state(), b.state());
}

#[test]
fn snapshot_restores_the_irq_level() {
    let mut p = pit();
    program(&mut p, 0, 3, 100);
    p.tick(Ticks(10));
    let q = Pit::from_state(p.state().clone(), Probe::default());
    assert!(q.irq().high);
    assert_eq!(q.state(), p.state());
}

#[test]
fn control_port_reads_float_and_bad_offsets_are_ignored() {
    let mut p = pit();
    assert_eq!(p.read(OFF_CONTROL), 0xFF);
    assert_eq!(p.read(4), 0xFF);
    let before = p.state().clone();
    p.write(4, 0x12);
    p.write(0xFFFF, 0x34);
    assert_eq!(p.state(), &before);
}

#[test]
fn bcd_helpers() {
    assert_eq!(from_bcd(0x9999), 9999);
    assert_eq!(from_bcd(0x0102), 102);
    assert_eq!(from_bcd(0xFFFF), 16_665);
    assert_eq!(to_bcd(1234), 0x1234);
    assert_eq!(to_bcd(0), 0);
}

/// A tiny deterministic generator (xorshift64*), so the fuzz is repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn one_tick_of_k_equals_k_single_ticks() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut a = pit();
        for _ in 0..20 {
            let r = rng.next();
            let ch = (r % 3) as u8;
            match (r >> 2) % 6 {
                0 => {
                    let mode = ((r >> 8) % 6) as u8;
                    let bcd = u8::from((r >> 12).is_multiple_of(4));
                    a.write(OFF_CONTROL, ch << 6 | RW_WORD << 4 | mode << 1 | bcd);
                    let count = ((r >> 16) % 12) as u16;
                    program_count_only(&mut a, ch, count);
                }
                1 => program_count_only(&mut a, ch, ((r >> 16) % 9) as u16),
                2 => a.set_gate(2, (r >> 20) & 1 != 0),
                3 => a.write(OFF_CONTROL, ((r >> 24) as u8) | 0xC0),
                _ => {}
            }
            let k = (r >> 32) % 40;
            let expect_rise = a.ticks_until_next_irq();
            let mut b = Pit::from_state(a.state().clone(), Probe::default());
            let mut first = None;
            for i in 1..=k {
                let before = b.irq().rises;
                b.tick(Ticks(1));
                if first.is_none() && b.irq().rises > before {
                    first = Some(i);
                }
            }
            let rises = a.irq().rises;
            a.tick(Ticks(k));
            assert_eq!(a.state(), b.state(), "seed {seed}");
            assert_eq!(a.irq().rises > rises, first.is_some(), "seed {seed}");
            if let Some(f) = first {
                assert_eq!(expect_rise, Some(Ticks(f)), "seed {seed}");
            } else if let Some(Ticks(t)) = expect_rise {
                assert!(t > k, "seed {seed}");
            }
        }
    }
}

#[test]
fn fuzz_never_panics() {
    for seed in 1..=64u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut p = pit();
        for _ in 0..3000 {
            let r = rng.next();
            let value = (r >> 8) as u8;
            match r % 6 {
                0 | 1 => p.write((r >> 16) as u16 % 6, value),
                2 => {
                    p.read((r >> 16) as u16 % 6);
                }
                3 => p.write_port61(value),
                4 => {
                    p.read_port61();
                    let _ = p.ticks_until_next_irq();
                }
                _ => p.tick(Ticks(match (r >> 24) % 4 {
                    0 => (r >> 32) % 100,
                    1 => (r >> 32) % 200_000,
                    2 => r >> 20,
                    _ => u64::MAX - (r >> 40),
                })),
            }
            assert_eq!(p.irq().high, p.state().irq_level);
            assert_eq!(p.state().irq_level, p.out(0), "IRQ0 follows OUT0");
        }
    }
}
