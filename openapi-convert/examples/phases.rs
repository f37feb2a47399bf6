//! `phases FILE`: times parsing, conversion and serialisation of one document separately.

use std::time::Instant;

fn main() {
    let Some(file) = std::env::args().nth(1) else {
        eprintln!("usage: phases FILE");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    };
    if std::env::var_os("PHASES_LOOP").is_some() {
        convert_loop(&text);
        return;
    }
    for _ in 0..5 {
        let t0 = Instant::now();
        let Ok((doc, _)) = openapi_convert::parse(&text) else {
            eprintln!("parse failed");
            std::process::exit(1);
        };
        let t1 = Instant::now();
        let Ok(conv) = openapi_convert::convert(doc) else {
            eprintln!("convert failed");
            std::process::exit(1);
        };
        let t2 = Instant::now();
        let out = serde_json::to_string_pretty(&conv.document).unwrap_or_default();
        let t3 = Instant::now();
        let report = conv.to_string().len();
        let t4 = Instant::now();
        println!(
            "parse {:?} convert {:?} serialize {:?} ({} bytes) report {:?} ({report} bytes, {} changes)",
            t1 - t0,
            t2 - t1,
            t3 - t2,
            out.len(),
            t4 - t3,
            conv.changes.len()
        );
    }
}

/// `PHASES_LOOP=1 phases FILE`: only conversions, for a profiler.
#[allow(dead_code)]
fn convert_loop(text: &str) {
    let Ok((doc, _)) = openapi_convert::parse(text) else {
        return;
    };
    let mut total = std::time::Duration::ZERO;
    for _ in 0..20 {
        let d = doc.clone();
        let t = Instant::now();
        let c = openapi_convert::convert(d);
        total += t.elapsed();
        std::mem::forget(c);
    }
    println!("convert only: {:?} per run", total / 20);
}
