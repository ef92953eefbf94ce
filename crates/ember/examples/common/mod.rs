//! Pieces the examples share (each example uses some of them).
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

/// The examples allocate with mimalloc: a streaming job that makes a
/// `String` per word spends a quarter of its CPU in glibc's malloc and
/// free, and about a third less with mimalloc (measured in
/// `bench/latency-soak`). Two lines do the same in your own program, with
/// `mimalloc` in its `[dependencies]`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starts a TCP server on a free loopback port that sends a few lines of
/// text every second to whoever connects, and returns the port: the
/// examples' embedded source when no host and port are given.
pub(crate) fn embedded_source() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let text = [
            "to be or not to be that is the question",
            "whether tis nobler in the mind to suffer",
            "the slings and arrows of outrageous fortune",
            "or to take arms against a sea of troubles",
        ];
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                for i in 0usize.. {
                    if writeln!(stream, "{}", text[i % text.len()]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
    });
    Ok(port)
}

/// Splits a line into words on single spaces, as Spark's examples do.
pub(crate) fn words(line: String) -> Vec<String> {
    line.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `[HOST] [PORT]` arguments of the examples reading a TCP text
/// server; with neither, an embedded source on loopback.
#[derive(clap::Args, Debug)]
pub(crate) struct Server {
    /// The host of the text server (e.g. `nc -lk 9999` on localhost); with
    /// no host and port, an embedded source on loopback
    #[arg(requires = "port")]
    host: Option<String>,
    /// The port of the text server
    port: Option<u16>,
}

impl Server {
    /// The host and port to read from, starting the embedded source when
    /// none were given.
    pub(crate) fn address(&self) -> std::io::Result<(String, u16)> {
        match (&self.host, self.port) {
            (Some(host), Some(port)) => Ok((host.clone(), port)),
            _ => {
                let port = embedded_source()?;
                eprintln!(
                    "no HOST PORT given: reading an embedded text source on 127.0.0.1:{port}"
                );
                Ok(("127.0.0.1".to_string(), port))
            }
        }
    }
}
