//! Fuzzes the `HOOKRELAY_RETRY_SCHEDULE` parser and the waits it yields: never panics (huge values once did, in
//! the jitter multiplication), an accepted schedule is exactly its comma-separated whole seconds, and every
//! wait lies within ±20% of its step.
#![no_main]

use hookrelay_core::retry::RetrySchedule;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (random, text) = match data.split_first() {
        Some((&first, rest)) => (f64::from(first) / 255.0, rest),
        None => (0.5, data),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(schedule) = RetrySchedule::parse(text) else { return };
    let secs: Vec<u64> = if text.trim().is_empty() {
        Vec::new()
    } else {
        text.trim().split(',').map(|part| part.trim().parse().expect("accepted parts are whole seconds")).collect()
    };
    assert_eq!(schedule, RetrySchedule::from_secs(&secs), "{text:?}");
    assert_eq!(schedule.next_wait(0, random), None);
    for (i, &step) in secs.iter().enumerate().take(64) {
        let wait = schedule.next_wait(i as u32 + 1, random).expect("a wait for every step");
        let step = step as f64;
        let wait = wait.as_secs_f64();
        assert!(wait >= step * 0.8 * (1.0 - 1e-9) && wait <= step * 1.2 * (1.0 + 1e-9), "step {step}s gave {wait}s");
    }
    if secs.len() < 64 {
        assert_eq!(schedule.next_wait(secs.len() as u32 + 1, random), None);
    }
});
