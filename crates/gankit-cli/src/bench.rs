//! `gankit bench`: time training iterations of a config (see `gankit::bench`).

use std::path::PathBuf;

use clap::Args;
use gankit::Result;
use gankit::bench::{self, BenchOptions};
use gankit::config::Config;

#[derive(Args)]
pub struct BenchArgs {
    /// Experiment config (TOML). Default: the built-in default, configs/dcgan-fashion.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config value, e.g. --set train.loss=hinge (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Batch size (overrides train.batch_size).
    #[arg(long)]
    batch: Option<usize>,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed iterations before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Worker threads (overrides train.threads; 0 = all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where to run the step: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu", conflicts_with = "data")]
    device: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also measure this machine's matrix-product peak on the same threads and show the
    /// step's achieved GFLOP/s (its convolutions and products) as a share of it.
    #[arg(long, conflicts_with = "data")]
    flops: bool,
    /// Measure the data pipeline alone instead of the step: images/s decoded from the
    /// files (image folders and archives) and images/s served in the config's mode.
    #[arg(long)]
    data: bool,
    /// Seconds each pipeline measurement lasts (with --data).
    #[arg(long, default_value_t = 5.0, requires = "data")]
    seconds: f64,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    let mut sets = args.set;
    if let Some(b) = args.batch {
        sets.push(format!("train.batch_size={b}"));
    }
    if let Some(t) = args.threads {
        sets.push(format!("train.threads={t}"));
    }
    let (cfg, name) = match &args.config {
        Some(p) => (Config::load(p, &sets)?, p.display().to_string()),
        None => (
            Config::from_toml_str("", "default config", &sets)?,
            "default (dcgan-fashion)".to_string(),
        ),
    };
    crate::commands::prepare_process(&cfg, cfg.train.threads)?;
    let threads = rayon_threads();
    if args.data {
        return bench_data(&cfg, &name, threads, args.seconds, args.json);
    }
    let opts = BenchOptions {
        warmup: args.warmup,
        steps: args.steps,
    };
    let device = gankit::device::select(&args.device)?;
    if args.flops && !device.is_cpu() {
        return Err(gankit::Error::Config(
            "--flops counts the products of gankit's CPU kernels: use it with --device cpu".into(),
        ));
    }
    let r = bench::run(&cfg, &device, opts)?;
    let peak = if args.flops {
        Some(bench::gemm_peak_gflops()?)
    } else {
        None
    };
    let t = &cfg.train;
    let loss = serde_json::to_value(t.loss).unwrap_or_default();
    let loss = loss.as_str().unwrap_or("?");
    if args.json {
        let v = serde_json::json!({
            "config": name,
            "arch": cfg.model.arch,
            "loss": t.loss,
            "batch_size": t.batch_size,
            "d_steps": t.d_steps,
            "g_steps": t.g_steps,
            "threads": threads,
            "device": gankit::device::name(&device),
            "isa": gankit::isa::Isa::in_use().to_string(),
            "steps": args.steps,
            "ms_median": r.ms_median,
            "ms_min": r.ms_min,
            "ms_max": r.ms_max,
            "images_per_s": r.images_per_s,
            "peak_rss_mib": r.peak_rss_mib,
            "gflop_per_iter": r.gflop_per_iter,
            "gflops": r.gflops(),
            "gemm_peak_gflops": peak,
            "params": r.params.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{v}");
    } else {
        println!("config        {name}");
        println!(
            "step          {} D + {} G steps, batch {}, loss {}, {} threads, {} ({})",
            t.d_steps,
            t.g_steps,
            t.batch_size,
            loss,
            threads,
            gankit::device::name(&device),
            gankit::isa::Isa::in_use()
        );
        println!(
            "params        {}",
            gankit::family::Model::describe_params(&r.params)
        );
        println!(
            "ms/iteration  {:.1} median of {} (min {:.1}, max {:.1})",
            r.ms_median, args.steps, r.ms_min, r.ms_max
        );
        println!("images/s      {:.0}", r.images_per_s);
        if let Some(peak) = peak {
            println!(
                "arithmetic    {:.2} GFLOP per iteration in convolutions and products, {:.1} GFLOP/s",
                r.gflop_per_iter,
                r.gflops()
            );
            println!(
                "gemm peak     {peak:.1} GFLOP/s (2048³ product, {threads} threads): the step runs at {:.0} % of it",
                100.0 * r.gflops() / peak
            );
        }
        match r.peak_rss_mib {
            Some(m) => println!("peak memory   {m:.0} MiB"),
            None => println!("peak memory   (not reported by this OS)"),
        }
    }
    Ok(())
}

/// `gankit bench --data`: the pipeline's throughput, streamed from the files and in the
/// config's own mode.
fn bench_data(cfg: &Config, name: &str, threads: usize, seconds: f64, json: bool) -> Result<()> {
    use gankit::config::DatasetKind;
    use gankit::data::throughput;
    use std::sync::Arc;
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err(gankit::Error::Config(format!(
            "--seconds {seconds}: give a duration in (0, 3600]"
        )));
    }
    let budget = std::time::Duration::from_secs_f64(seconds);
    let batch = cfg.train.batch_size;
    let mut bar = crate::progress::Decoding::new();
    let set = Arc::new(gankit::data::load_with(&cfg.data, &mut |d, t| {
        bar.update(d, t)
    })?);
    drop(bar);
    let served = throughput::measure(&set, batch, budget, usize::MAX)?;
    // Decoding from the files: the streaming mode's throughput, which is also the rate a
    // cache is built at.
    let decoded = if set.pixels.is_streamed() {
        Some(served) // the config streams: what it serves is what it decodes
    } else if cfg.data.dataset == DatasetKind::Folder {
        let mut streamed = cfg.data.clone();
        streamed.cache = false;
        let s = Arc::new(gankit::data::load(&streamed)?);
        Some(throughput::measure(&s, batch, budget, usize::MAX)?)
    } else {
        None
    };
    if json {
        let v = serde_json::json!({
            "config": name,
            "source": set.source,
            "images": set.len,
            "batch_size": batch,
            "threads": threads,
            "mode": throughput::mode(&set),
            "served_images_per_s": served.images_per_s(),
            "decoded_images_per_s": decoded.map(|d| d.images_per_s()),
        });
        println!("{v}");
        return Ok(());
    }
    println!("config        {name}");
    println!("data          {} ({} images)", set.source, set.len);
    println!(
        "image         {}x{}x{}, batch {batch}, {threads} threads",
        set.channels, set.size, set.size
    );
    match decoded {
        Some(d) => println!(
            "decoded       {:.0} images/s (from the files, as streaming and a cache build do)",
            d.images_per_s()
        ),
        None => println!("decoded       (not applicable: this source is decoded whole at start)"),
    }
    println!(
        "served        {:.0} images/s ({})",
        served.images_per_s(),
        throughput::mode(&set)
    );
    println!("              compare with the step's images/s from `gankit bench` on this config");
    Ok(())
}

/// The number of threads the tensor ops run on (RAYON_NUM_THREADS, else every core).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
