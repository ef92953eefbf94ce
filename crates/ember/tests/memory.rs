//! Memory stays bounded whatever the input's shape: a 1 GiB file read by a
//! directory stream, and a socket peer that sends 1 GiB without a newline.
//! Peak resident memory is measured around each case (the kernel's
//! high-water mark, reset in between), so this is a test binary of its own.

use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use ember::prelude::*;

const GIB: u64 = 1 << 30;
/// Far below the input's size: the old whole-file reading peaked near 3 GiB.
const BOUND: u64 = 300 << 20;

/// Resets this process's peak resident memory to its current size.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// This process's peak resident memory since the last reset, in bytes.
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn memory_stays_bounded_for_huge_files_and_endless_lines() {
    a_one_gib_file_is_read_in_bounded_memory();
    a_one_gib_line_from_a_socket_is_dropped_in_bounded_memory();
}

fn a_one_gib_file_is_read_in_bounded_memory() {
    let input = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    // Lines of 1 KiB less their newline, numbered so that none repeats.
    let path = staging.path().join("big.txt");
    let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
    let lines = GIB / 1024;
    let pad = "x".repeat(1023 - 12);
    for i in 0..lines {
        writeln!(out, "{i:012}{pad}").unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();

    let t0 = 1_000_000;
    let clock = ManualClock::starting_at(t0);
    let conf = StreamingConf::new("memory", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let dir = input.path().to_path_buf();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.text_file_stream(&dir)
            .map(|l| (1u64, l.len() as u64, l.starts_with("000000000000") as u64))
            .reduce(|a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
            .foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch));
    })
    .unwrap();
    ssc.start().unwrap();
    let moved = input.path().join("big.txt");
    std::fs::rename(&path, &moved).unwrap();
    let f = std::fs::File::options().write(true).open(&moved).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_millis(t0 + 500))
        .unwrap();
    drop(f);
    reset_peak();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(t0 + 1000)).unwrap();
    let used = peak();
    ssc.stop(false).unwrap();
    assert_eq!(*seen.lock().unwrap(), [(lines, lines * 1023, 1)]);
    eprintln!("1 GiB file: peak resident memory {} MiB", used >> 20);
    assert!(used < BOUND, "peak {} MiB", used >> 20);
}

fn a_one_gib_line_from_a_socket_is_dropped_in_bounded_memory() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut out = BufWriter::with_capacity(1 << 20, conn);
        out.write_all(b"before\n").unwrap();
        let block = vec![b'y'; 1 << 20];
        for _ in 0..GIB >> 20 {
            out.write_all(&block).unwrap();
        }
        out.write_all(b"\nafter\n").unwrap();
        out.flush().unwrap();
        // Held open until the test has seen "after".
        out
    });
    let conf = StreamingConf::new("memory-socket", millis(200))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.socket_text_stream("127.0.0.1", port)
            .foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch));
    })
    .unwrap();
    reset_peak();
    ssc.start().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !seen.lock().unwrap().iter().any(|l| l == "after") {
        assert!(std::time::Instant::now() < deadline, "\"after\" never came");
        ssc.await_termination_or_timeout(Duration::from_millis(50))
            .unwrap();
    }
    let used = peak();
    ssc.stop(false).unwrap();
    drop(server.join().unwrap());
    assert_eq!(*seen.lock().unwrap(), ["before", "after"]);
    eprintln!(
        "1 GiB line on a socket: peak resident memory {} MiB",
        used >> 20
    );
    assert!(used < BOUND, "peak {} MiB", used >> 20);
}
