//! Benchmark: generates mixed files, inspects them, prints time and peak memory.
//!
//!   cargo run -p dataset --example bench_inspect -- files 10000
//!   cargo run -p dataset --example bench_inspect -- mbox 1024     (a mailbox of ~1024 MiB)

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use dataset::{inspect, CharEstimate, Options};

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|k| k / 1024.0)
        .unwrap_or(f64::NAN)
}

const SUBJECTS: &[&str] = &["the Foundry Blend", "your order", "the decaf", "our espresso roast", "the gift box", "the Guji", "your subscription", "the cafe", "the new bag", "the grinder"];
const VERBS: &[&str] = &["ships on", "is roasted on", "goes out on", "is ready on", "comes back on", "is packed on"];
const DAYS: &[&str] = &["Tuesday", "Friday", "Monday morning", "the next roast day", "Saturday", "Thursday afternoon"];
const TAILS: &[&str] = &["and you will get a tracking link", "so it is fresh from the drum", "and we will email you when it leaves", "if you order before noon", "with a note about the grind", "and the cafe keeps a bag for you"];

/// Plausible customer-service English, varied enough that records are not near duplicates.
fn sentence(seed: &mut u64, n: usize) -> String {
    let mut pick = |xs: &[&'static str]| {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        xs[(*seed >> 33) as usize % xs.len()]
    };
    let mut out = String::new();
    let mut words = 0;
    while words < n {
        let s = format!("{} {} {} {} {}. ", capital(pick(SUBJECTS)), pick(VERBS), pick(DAYS), pick(TAILS), pick(&["for you", "this week", "as usual", "again", "today"]));
        words += s.split_whitespace().count();
        out.push_str(&s);
    }
    out.trim_end().to_string()
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn generate(dir: &Path, n: usize) {
    let mut seed = 7u64;
    for i in 0..n {
        let sub = dir.join(format!("d{}", i % 100));
        std::fs::create_dir_all(&sub).unwrap();
        let body: Vec<u8> = match i % 20 {
            0..=5 => (0..5)
                .map(|k| format!("{{\"messages\":[{{\"role\":\"user\",\"content\":\"{} {k}?\"}},{{\"role\":\"assistant\",\"content\":\"{}\"}}]}}\n", sentence(&mut seed, 8), sentence(&mut seed, 30)))
                .collect::<String>()
                .into_bytes(),
            6..=9 => {
                let mut s = String::from("question,answer\n");
                for _ in 0..5 {
                    s.push_str(&format!("\"{}\",\"{}\"\n", sentence(&mut seed, 8), sentence(&mut seed, 25)));
                }
                s.into_bytes()
            }
            10..=12 => format!("From: c{i}@example.com\nTo: shop@example.com\nSubject: q {i}\nMessage-ID: <m{i}@example.com>\nContent-Type: text/plain; charset=utf-8\n\n{}\n", sentence(&mut seed, 40)).into_bytes(),
            13..=15 => format!("# Notes {i}\n\n{}\n\n{}\n\n{}\n", sentence(&mut seed, 60), sentence(&mut seed, 60), sentence(&mut seed, 60)).into_bytes(),
            16 => format!("<html><body><h1>Page {i}</h1><p>{}</p><p>{}</p></body></html>", sentence(&mut seed, 40), sentence(&mut seed, 40)).into_bytes(),
            17 => format!("categories:\n- x\nconversations:\n- - {}\n  - {}\n- - {}\n  - {}\n", sentence(&mut seed, 6), sentence(&mut seed, 12), sentence(&mut seed, 6), sentence(&mut seed, 12)).into_bytes(),
            18 => {
                let mut s = String::new();
                for k in 0..3 {
                    s.push_str(&format!("From c{k}@example.com Mon Jun  3 09:00:00 2024\nFrom: c{k}@example.com\nSubject: s\nMessage-ID: <b{i}-{k}@x>\n\n{}\n\n", sentence(&mut seed, 30)));
                    s.push_str(&format!("From shop@example.com Mon Jun  3 10:00:00 2024\nFrom: shop@example.com\nSubject: Re: s\nMessage-ID: <r{i}-{k}@x>\nIn-Reply-To: <b{i}-{k}@x>\n\n{}\n\n", sentence(&mut seed, 30)));
                }
                s.into_bytes()
            }
            _ => b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
        };
        let ext = match i % 20 {
            0..=5 => "jsonl",
            6..=9 => "csv",
            10..=12 => "eml",
            13..=14 => "md",
            15 => "txt",
            16 => "html",
            17 => "yml",
            18 => "mbox",
            _ => "png",
        };
        std::fs::write(sub.join(format!("f{i}.{ext}")), body).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("files");
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    match mode {
        "files" => {
            let t = Instant::now();
            generate(dir.path(), n);
            println!("generated {n} files in {:.1} s", t.elapsed().as_secs_f64());
        }
        "mbox" => {
            let t = Instant::now();
            let p = dir.path().join("big.mbox");
            let mut w = BufWriter::new(std::fs::File::create(&p).unwrap());
            let mut seed = 3u64;
            let mut written = 0usize;
            let mut k = 0usize;
            while written < n << 20 {
                let q = format!("From c{k}@example.com Mon Jun  3 09:00:00 2024\nFrom: c{k}@example.com\nSubject: s{k}\nMessage-ID: <q{k}@x>\n\n{}\n\n", sentence(&mut seed, 120));
                let r = format!("From shop@example.com Mon Jun  3 10:00:00 2024\nFrom: shop@example.com\nSubject: Re: s{k}\nMessage-ID: <r{k}@x>\nIn-Reply-To: <q{k}@x>\n\n{}\n\n", sentence(&mut seed, 120));
                w.write_all(q.as_bytes()).unwrap();
                w.write_all(r.as_bytes()).unwrap();
                written += q.len() + r.len();
                k += 1;
            }
            w.flush().unwrap();
            println!("generated a {} MiB mailbox ({} emails) in {:.1} s", written >> 20, 2 * k, t.elapsed().as_secs_f64());
        }
        other => panic!("unknown mode {other}: use `files N` or `mbox MIB`"),
    }
    let rss0 = peak_rss_mib();
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let report = inspect(&[dir.path().to_path_buf()], &Options::default(), &CharEstimate);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "inspected {} files, {} records, {} findings in {secs:.2} s wall, {:.2} s CPU; peak RSS {:.0} MiB (before inspecting: {rss0:.0} MiB)",
        report.files.len(),
        report.stats.records,
        report.findings.len(),
        cpu_seconds() - cpu0,
        peak_rss_mib()
    );
    let mut codes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in &report.findings {
        *codes.entry(f.code.as_str()).or_default() += 1;
    }
    println!("findings by code: {codes:?}");
}
