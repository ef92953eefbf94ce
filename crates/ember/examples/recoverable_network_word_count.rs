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
//! With no arguments it reads an embedded text source and uses temporary
//! paths. Flags: `--master local[N]`, `--batch-interval 1s`.

mod common;

use std::io::Write;
use std::path::PathBuf;

use ember::prelude::*;
use ember::SocketOptions;

fn main() -> anyhow::Result<()> {
    common::init_logging();
    let conf = StreamingConf::new("RecoverableNetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?;
    let (conf, args) = conf.parse_args(std::env::args().skip(1))?;
    let (host, port, checkpoint, output) = match args.as_slice() {
        [host, port, checkpoint, output] => {
            (host.clone(), port.parse::<u16>()?, PathBuf::from(checkpoint), PathBuf::from(output))
        }
        [] => {
            let port = common::embedded_source()?;
            let tmp = std::env::temp_dir().join(format!("ember-recoverable-{}", std::process::id()));
            eprintln!(
                "no arguments: reading an embedded source on 127.0.0.1:{port}, checkpoints in {}, \
                 output in {}",
                tmp.join("checkpoint").display(),
                tmp.join("out.txt").display()
            );
            std::fs::create_dir_all(&tmp)?;
            ("127.0.0.1".to_string(), port, tmp.join("checkpoint"), tmp.join("out.txt"))
        }
        _ => anyhow::bail!(
            "usage: recoverable_network_word_count <host> <port> <checkpoint-directory> <output-file> \
             [--master local[N]]"
        ),
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
    ssc.start()?;
    // ember always runs the closure above (the program's current code);
    // whether there was a checkpoint to resume from shows after start.
    match ssc.resumed_from() {
        Some(time) => eprintln!(
            "resumed from the checkpoint at {time} in {}",
            checkpoint.display()
        ),
        None => eprintln!(
            "no complete checkpoint in {} (one is taken every 10 s): the counts start \
             empty; lines received before a kill are replayed from the write-ahead log",
            checkpoint.display()
        ),
    }
    ssc.await_termination()?;
    Ok(())
}
