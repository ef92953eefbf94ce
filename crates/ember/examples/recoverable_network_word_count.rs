//! RecoverableNetworkWordCount: word counts per batch that survive a crash —
//! Spark's `RecoverableNetworkWordCount` example in ember.
//!
//! ```text
//! nc -lk 9999
//! cargo run --release --example recoverable_network_word_count -- localhost 9999 /tmp/ember-ckpt /tmp/ember-out.txt
//! ```
//!
//! Each batch's counts are appended to the output file as
//! `Counts at time <ms> ms [(word,count), ...]`, Spark's layout. Kill the
//! program (even with `kill -9`) and start it again with the same arguments:
//! `get_or_create` resumes from the checkpoint directory, the received lines
//! that had not been checkpointed are replayed from the write-ahead log, and
//! the batches missed while it was down run again.
//!
//! Whether it resumed, from which checkpoint and how many batches it runs
//! again, or why it started from empty state, is logged on stderr at start.
//!
//! With no arguments it reads an embedded text source and uses temporary
//! paths. `--help` lists the flags: `--master local[N]`, `--batch-interval
//! 1s`, `--checkpoint-interval 10s`, ...

mod common;

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use ember::prelude::*;
use ember::{SocketOptions, StreamingArgs};

/// Word counts per batch, appended to a file, that survive a crash.
#[derive(Parser)]
struct Cli {
    /// The host of the text server; with no arguments, an embedded source
    /// and temporary paths
    #[arg(requires_all = ["port", "checkpoint", "output"])]
    host: Option<String>,
    /// The port of the text server
    port: Option<u16>,
    /// The checkpoint directory: give the same one to resume
    checkpoint: Option<PathBuf>,
    /// The file the counts are appended to
    output: Option<PathBuf>,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("RecoverableNetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let (host, port, checkpoint, output) = match cli {
        Cli {
            host: Some(host),
            port: Some(port),
            checkpoint: Some(checkpoint),
            output: Some(output),
            ..
        } => (host, port, checkpoint, output),
        _ => {
            let port = common::embedded_source()?;
            let tmp =
                std::env::temp_dir().join(format!("ember-recoverable-{}", std::process::id()));
            eprintln!(
                "no arguments: reading an embedded source on 127.0.0.1:{port}, checkpoints in {}, \
                 output in {}",
                tmp.join("checkpoint").display(),
                tmp.join("out.txt").display()
            );
            std::fs::create_dir_all(&tmp)?;
            (
                "127.0.0.1".to_string(),
                port,
                tmp.join("checkpoint"),
                tmp.join("out.txt"),
            )
        }
    };

    let dir = checkpoint.clone();
    let ssc = StreamingContext::get_or_create(&checkpoint, move || {
        let ssc = StreamingContext::new(conf)?;
        ssc.checkpoint(&dir);
        ssc.define(move |s| {
            let options = SocketOptions::default().write_ahead_log(true);
            let counts = s
                .socket_text_stream_with(&host, port, options)
                .flat_map(common::words)
                .map(|w| (w, 1u64))
                .reduce_by_key(|a, b| a + b);
            let output = output.clone();
            counts.foreach_rdd(move |batch, time| {
                let text: Vec<String> = batch.iter().map(Show::show).collect();
                let line = format!("Counts at time {time} [{}]", text.join(", "));
                println!("{line}");
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&output)
                    .and_then(|mut f| writeln!(f, "{line}"));
                if let Err(e) = appended {
                    eprintln!("cannot append to {}: {e}", output.display());
                }
            });
        })?;
        Ok(ssc)
    })?;
    // ember always runs the closure above (the program's current code);
    // `start` logs whether it resumed from a checkpoint (and from which:
    // `ssc.resumed_from()` tells the program too) or starts empty, and why.
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
