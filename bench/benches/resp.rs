//! RESP codec benchmarks: request parsing (pipelines as redis-benchmark and memtier send them,
//! and a large value) and reply encoding.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrite_commands::resp::{Limits, Parse, Parser, Reply};

/// A multibulk request.
fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// 16 `SET key:NNNNNN xyz` and 16 `GET key:NNNNNN`, interleaved, as one read.
fn set_get_pipeline() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..16 {
        let key = format!("key:{:06}", 123 + i);
        out.extend_from_slice(&request(&[b"SET", key.as_bytes(), b"xyz"]));
        out.extend_from_slice(&request(&[b"GET", key.as_bytes()]));
    }
    out
}

/// Parses every command of `input` as the worker does; returns the argument count seen.
fn parse_all(parser: &mut Parser, input: &[u8], limits: &Limits) -> usize {
    let mut pos = 0;
    let mut argc = 0;
    loop {
        match parser.parse(&input[pos..], limits) {
            Parse::Command { consumed } => {
                argc += parser.args(&input[pos..]).len();
                pos += consumed;
            }
            Parse::Skip { consumed } => pos += consumed,
            Parse::Incomplete | Parse::Error(_) => return argc,
        }
    }
}

fn parsing(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse");

    let pipeline = set_get_pipeline();
    group.throughput(Throughput::Elements(32));
    group.bench_function("pipeline_16_set_16_get", |b| {
        let mut parser = Parser::new();
        b.iter(|| parse_all(&mut parser, black_box(&pipeline), &limits));
    });

    let inline: Vec<u8> = (0..16)
        .flat_map(|i| {
            format!("SET key:{:06} xyz\r\nGET key:{:06}\r\n", 123 + i, 123 + i).into_bytes()
        })
        .collect();
    group.bench_function("inline_16_set_16_get", |b| {
        let mut parser = Parser::new();
        b.iter(|| parse_all(&mut parser, black_box(&inline), &limits));
    });

    let value = vec![b'v'; 1024];
    let big = request(&[b"SET", b"key:000123", &value]);
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("set_1kib_value", |b| {
        let mut parser = Parser::new();
        b.iter(|| parse_all(&mut parser, black_box(&big), &limits));
    });

    // The same request arriving in 64-byte reads: resumption must not rescan.
    group.bench_function("set_1kib_value_in_64b_reads", |b| {
        let mut parser = Parser::new();
        b.iter(|| {
            let mut end = 0;
            loop {
                end = (end + 64).min(big.len());
                match parser.parse(black_box(&big[..end]), &limits) {
                    Parse::Incomplete if end < big.len() => continue,
                    outcome => break outcome,
                }
            }
        });
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(64 * 1024);
    let value = [b'v'; 64];

    group.bench_function("bulk_64b", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            r.bulk(black_box(&value));
            out.len()
        });
    });
    group.bench_function("int", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            r.int(black_box(-1_234_567_890_123));
            out.len()
        });
    });
    group.bench_function("array_of_16_bulks", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            r.array_len(16);
            for _ in 0..16 {
                r.bulk(black_box(&value[..3]));
            }
            out.len()
        });
    });
    group.bench_function("resp3_map_of_8", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, true);
            r.map_len(8);
            for i in 0..8 {
                r.bulk(black_box(b"field"));
                r.int(black_box(i));
            }
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, parsing, encoding);
criterion_main!(benches);
