//! `ember-submit` with stand-in programs: every process gets its cluster
//! settings, process 0's output passes through while the others' lines are
//! prefixed, and a failing process stops the rest with its exit status.

use std::process::Command;
use std::time::{Duration, Instant};

fn submit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ember-submit"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_process_gets_its_settings_and_its_lines_are_told_apart() {
    let out = submit(&[
        "--processes",
        "3",
        "--workers",
        "2",
        "--",
        "sh",
        "-c",
        "echo \"p=$EMBER_PROCESS of $EMBER_HOSTS w=$EMBER_WORKERS m=$EMBER_MASTER\"; echo log-$EMBER_PROCESS >&2",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Process 0's standard output, untouched, and only it.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("p=0 of 127.0.0.1:"), "{stdout}");
    assert!(lines[0].ends_with(" w=2 m=cluster"), "{stdout}");
    let hosts = lines[0]
        .trim_start_matches("p=0 of ")
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(hosts.split(',').count(), 3, "three addresses: {hosts}");
    for p in 0..3 {
        assert!(stderr.contains(&format!("[p{p}] log-{p}")), "{stderr}");
    }
    for p in 1..3 {
        assert!(
            stderr.contains(&format!("[p{p} stdout] p={p} of {hosts}")),
            "{stderr}"
        );
    }
}

#[test]
fn a_failing_process_stops_the_others_and_sets_the_status() {
    let started = Instant::now();
    let out = submit(&[
        "--processes",
        "3",
        "--",
        "sh",
        "-c",
        "if [ \"$EMBER_PROCESS\" = 1 ]; then exit 3; fi; exec sleep 60",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the others were stopped, not waited for"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("process 1 exited"), "{stderr}");
}

#[test]
fn bad_usage_says_how() {
    let out = submit(&["--processes", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--processes") && stderr.contains("≥ 1"),
        "{stderr}"
    );
    assert!(stderr.contains("--help"), "{stderr}");

    // --workers is ember's own flag, checked by the same rule.
    let out = submit(&["--workers", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--workers") && stderr.contains("≥ 1"),
        "{stderr}"
    );

    let out = submit(&["--bogus", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage: ember-submit"), "{stderr}");

    let out = submit(&["--processes", "2"]);
    assert_eq!(out.status.code(), Some(2), "no program");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROGRAM"));
}

#[test]
fn help_exits_0_with_the_usage() {
    let out = submit(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Usage: ember-submit"), "{stdout}");
    assert!(stdout.contains("--workers <N>"), "{stdout}");
}
