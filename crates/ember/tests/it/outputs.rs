//! Output operations: `print` text and `save_as_text_files` layout, byte for
//! byte against Spark's documented formats.

use std::fs;

use ember::testing::run_batches;

/// Spark's `print()` for one batch, written out by hand.
fn spark_print(time_ms: u64, lines: &[&str], more: bool) -> String {
    let dashes = "-".repeat(43);
    let mut s = format!("{dashes}\nTime: {time_ms} ms\n{dashes}\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    if more {
        s.push_str("...\n");
    }
    s.push('\n');
    s
}

#[test]
fn print_matches_sparks_layout_for_full_short_and_empty_batches() {
    for workers in [1, 3] {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        let _: Vec<Vec<()>> = run_batches(workers, 3, move |s, _out| {
            let batches = vec![
                (1..=12)
                    .map(|i| (format!("w{i}"), i as u64))
                    .collect::<Vec<_>>(),
                vec![("only".to_string(), 1)],
                vec![],
            ];
            let sink = sink.clone();
            s.queue_stream(batches, true, None)
                .print_with(10, move |t| sink.lock().unwrap().push_str(t));
            // run_batches needs its collector fed: an empty side output.
            ember::testing::collect_into(&s.queue_stream(Vec::<Vec<()>>::new(), true, None), _out);
        });
        let first: Vec<String> = (1..=10).map(|i| format!("(w{i},{i})")).collect();
        let first: Vec<&str> = first.iter().map(String::as_str).collect();
        let want = spark_print(1000, &first, true)
            + &spark_print(2000, &["(only,1)"], false)
            + &spark_print(3000, &[], false);
        assert_eq!(*text.lock().unwrap(), want, "workers = {workers}");
    }
}

#[test]
fn save_as_text_files_writes_sparks_layout_and_overwrites_on_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("counts").to_string_lossy().into_owned();
    let run = |workers: usize, batch: Vec<(String, u64)>| {
        let prefix = prefix.clone();
        let _: Vec<Vec<()>> = run_batches(workers, 2, move |s, out| {
            let q = s.queue_stream(vec![batch.clone()], true, None);
            q.save_as_text_files(prefix.clone(), "txt");
            ember::testing::collect_into(&s.queue_stream(Vec::<Vec<()>>::new(), true, None), out);
        });
    };
    let records: Vec<(String, u64)> = (0..7).map(|i| (format!("k{i}"), i)).collect();
    run(3, records.clone());

    let batch1 = dir.path().join("counts-1000.txt");
    // Three workers: parallelize-like contiguous slices 0..2, 2..4, 4..7.
    let part = |i: usize| fs::read_to_string(batch1.join(format!("part-{i:05}"))).unwrap();
    assert_eq!(part(0), "(k0,0)\n(k1,1)\n");
    assert_eq!(part(1), "(k2,2)\n(k3,3)\n");
    assert_eq!(part(2), "(k4,4)\n(k5,5)\n(k6,6)\n");
    assert_eq!(fs::read(batch1.join("_SUCCESS")).unwrap(), b"");
    // The empty second batch still gets its directory, with empty parts.
    let batch2 = dir.path().join("counts-2000.txt");
    assert_eq!(fs::read_to_string(batch2.join("part-00000")).unwrap(), "");
    assert!(batch2.join("_SUCCESS").exists());

    // A rerun with one worker overwrites: one part, no stale parts.
    run(1, vec![("x".to_string(), 9)]);
    let mut names: Vec<String> = fs::read_dir(&batch1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["_SUCCESS", "part-00000"]);
    assert_eq!(
        fs::read_to_string(batch1.join("part-00000")).unwrap(),
        "(x,9)\n"
    );
}

#[test]
fn save_as_text_files_without_suffix_and_unwritable_target_fails_with_sink_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the batch directory's parent should be.
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, "x").unwrap();
    let prefix = blocker.join("out").to_string_lossy().into_owned();

    let clock = ember::ManualClock::new();
    let conf = ember::StreamingConf::new("t", ember::seconds(1))
        .master("local[2]")
        .unwrap();
    let ssc = ember::StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(move |s| {
        s.queue_stream(vec![vec![1u64]], true, None)
            .save_as_text_files(prefix.clone(), "");
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(ember::seconds(1));
    let err = ssc.await_termination().unwrap_err();
    match &err {
        ember::Error::Sink { sink, message, .. } => {
            assert!(sink.starts_with("save_as_text_files("), "{err}");
            assert!(message.contains("out-1000"), "{err}");
        }
        other => panic!("expected a Sink error, got {other:?}"),
    }
}
