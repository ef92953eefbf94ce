//! `text_file_stream`: Spark's file selection rules — new files by
//! modification time, each once, in the batch their time falls in; files
//! present at start and hidden files are not read.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use ember::prelude::*;

/// The manual clock starts here, so files can be older than the start.
const T0: u64 = 1_000_000;

fn write_with_mtime(dir: &Path, staging: &Path, name: &str, text: &str, mtime_ms: u64) {
    // Written elsewhere, then moved in: the way files should arrive.
    let tmp = staging.join(name);
    fs::write(&tmp, text).unwrap();
    let f = fs::File::options().write(true).open(&tmp).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_millis(mtime_ms))
        .unwrap();
    drop(f);
    fs::rename(&tmp, dir.join(name)).unwrap();
}

fn run(workers: usize, dir: &Path, batches: u64) -> Vec<(u64, Vec<String>)> {
    let clock = ManualClock::starting_at(T0);
    let conf = StreamingConf::new("files", seconds(1))
        .master(&format!("local[{workers}]"))
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let dir = dir.to_path_buf();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.text_file_stream(&dir)
            .foreach_rdd(move |b, t| sink.lock().unwrap().push((t.milliseconds() - T0, b)));
    })
    .unwrap();
    ssc.start().unwrap();
    for i in 1..=batches {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(T0 + i * 1000)).unwrap();
    }
    ssc.stop(false).unwrap();
    let got = seen.lock().unwrap().clone();
    got
}

#[test]
fn new_files_are_read_once_in_the_batch_of_their_modification_time() {
    for workers in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = staging.path();
        write_with_mtime(d, s, "old.txt", "old\n", T0 - 5_000); // before start
        write_with_mtime(d, s, ".hidden", "hidden\n", T0 + 500);
        write_with_mtime(d, s, "_temporary", "temp\n", T0 + 500);
        fs::create_dir(d.join("subdir")).unwrap();
        write_with_mtime(d, s, "a.txt", "a1\na2\n", T0 + 500); // batch 1000
        write_with_mtime(d, s, "b.txt", "b1\r\nb2", T0 + 1_500); // batch 2000
        write_with_mtime(d, s, "c.txt", "c1\n", T0 + 2_000); // exactly at 2000: batch 2000
        write_with_mtime(d, s, "late.txt", "late\n", T0 + 3_500); // batch 4000

        let got = run(workers, d, 5);
        let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let want = vec![
            (1000, lines(&["a1", "a2"])),
            (2000, lines(&["b1", "b2", "c1"])),
            (3000, lines(&[])),
            (4000, lines(&["late"])),
            (5000, lines(&[])),
        ];
        assert_eq!(got, want, "workers = {workers}");
    }
}

#[test]
fn files_keep_their_order_across_workers() {
    // Many files in one batch: ordered by modification time, then name.
    let dir = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    for i in 0..7u64 {
        write_with_mtime(
            dir.path(),
            staging.path(),
            &format!("f{i}"),
            &format!("line{i}\n"),
            T0 + 100 + i,
        );
    }
    let got = run(3, dir.path(), 1);
    let want: Vec<String> = (0..7).map(|i| format!("line{i}")).collect();
    assert_eq!(got, vec![(1000, want)]);
}

#[test]
fn a_missing_directory_fails_start_with_a_source_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let conf = StreamingConf::new("files", seconds(1))
        .master("local[2]")
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, ManualClock::new()).unwrap();
    let m = missing.clone();
    ssc.define(move |s| s.text_file_stream(&m).print()).unwrap();
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, ember::Error::Source { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("create it before starting") && text.contains("nope"),
        "{text}"
    );

    // A file where a directory is expected.
    let file = dir.path().join("plain");
    fs::write(&file, "x").unwrap();
    let conf = StreamingConf::new("files", seconds(1))
        .master("local[1]")
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, ManualClock::new()).unwrap();
    ssc.define(move |s| s.text_file_stream(&file).print())
        .unwrap();
    let err = ssc.start().unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn binary_records_cut_each_new_file_into_fixed_length_records() {
    for workers in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        let (d, s) = (dir.path(), staging.path());
        write_with_mtime(d, s, "old.bin", "zzzz", T0 - 5_000); // before start
        write_with_mtime(d, s, "a.bin", "abcdef", T0 + 500); // batch 1000
        write_with_mtime(d, s, "b.bin", "", T0 + 1_200); // batch 2000: no records
        write_with_mtime(d, s, "c.bin", "ghij", T0 + 1_500); // batch 2000

        let clock = ManualClock::starting_at(T0);
        let conf = StreamingConf::new("binary", seconds(1))
            .master(&format!("local[{workers}]"))
            .unwrap();
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let path = d.to_path_buf();
        ssc.define(move |sc| {
            let sink = sink.clone();
            sc.binary_records_stream(&path, 2)
                .foreach_rdd(move |b, t| sink.lock().unwrap().push((t.milliseconds() - T0, b)));
        })
        .unwrap();
        ssc.start().unwrap();
        for i in 1..=2 {
            clock.advance(seconds(1));
            ssc.await_batch(Time::from_millis(T0 + i * 1000)).unwrap();
        }
        ssc.stop(false).unwrap();
        let records = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let want = vec![
            (1000, records(&["ab", "cd", "ef"])),
            (2000, records(&["gh", "ij"])),
        ];
        assert_eq!(*seen.lock().unwrap(), want, "workers = {workers}");
    }
}

#[test]
fn a_binary_file_with_a_partial_record_stops_the_context_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    write_with_mtime(dir.path(), staging.path(), "odd.bin", "abcde", T0 + 500);
    let clock = ManualClock::starting_at(T0);
    let conf = StreamingConf::new("binary", seconds(1))
        .master("local[2]")
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let path = dir.path().to_path_buf();
    ssc.define(move |sc| sc.binary_records_stream(&path, 2).print())
        .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    let err = ssc.await_termination().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ember::Error::Source { .. }), "{err:?}");
    assert!(
        text.contains("odd.bin") && text.contains("not a multiple"),
        "{text}"
    );
}
