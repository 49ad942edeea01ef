//! Engine benchmark (issue 7): the library code of `faultsweep bench` on the
//! demo model, MobileNetV2 and ResNet-18. Each fault list runs four ways
//! (engine, engine without dropping, suffix bound, full forward), each way
//! and repeat in its own process of the faultsweep binary; the tables go to
//! stdout and the JSON reports to target/bench-results/.
//!
//! Run: `cargo bench --bench engine` (options after `--`: `--quick` for one
//! repeat, `--repeat N`, `--threads N`, `--chunk N`, `--only NAME` to run
//! the cases whose name contains NAME). MobileNetV2 needs
//! ../shared/models/mobilenet_v2.onnx and ../shared/images; ResNet-18 is the
//! full-size model when `python3 scripts/make_bench_resnet18.py` has written
//! target/bench-models/resnet18.onnx, else the shrunk test fixture.

use std::path::{Path, PathBuf};

use faultsweep::bench::{self, BenchArgs, Isolation};
use faultsweep::campaign::RunArgs;

struct Case {
    name: &'static str,
    scenario: &'static str,
    /// Files the case needs (skipped with a message when one is absent).
    needs: Vec<&'static str>,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let repeat = arg(&args, "--repeat").unwrap_or(if quick { 1 } else { 3 });
    let threads: Option<i32> = arg(&args, "--threads");
    let chunk: Option<usize> = arg(&args, "--chunk");
    let only: Option<String> = arg(&args, "--only");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("the repository root");
    let resnet_full = Path::new("target/bench-models/resnet18.onnx").exists();
    if !resnet_full {
        println!(
            "ResNet-18: target/bench-models/resnet18.onnx is absent \
             (python3 scripts/make_bench_resnet18.py writes it); using the shrunk fixture"
        );
    }
    let mobilenet = || vec!["../shared/models/mobilenet_v2.onnx", "../shared/images"];
    let resnet = |name, full, fixture| match resnet_full {
        true => Case {
            name,
            scenario: full,
            needs: vec!["../shared/images"],
        },
        false => Case {
            name,
            scenario: fixture,
            needs: vec![],
        },
    };
    let cases = [
        Case {
            name: "demo",
            scenario: "scenarios/fashion_neurons.yml",
            needs: vec![],
        },
        Case {
            name: "demo_weights",
            scenario: "scenarios/fashion_weights.yml",
            needs: vec![],
        },
        Case {
            name: "mobilenet_v2_uniform",
            scenario: "scenarios/bench_mobilenet_v2_uniform.yml",
            needs: mobilenet(),
        },
        Case {
            name: "mobilenet_v2_last_quarter",
            scenario: "scenarios/bench_mobilenet_v2_last_quarter.yml",
            needs: mobilenet(),
        },
        Case {
            name: "mobilenet_v2_weights",
            scenario: "scenarios/bench_mobilenet_v2_weights.yml",
            needs: mobilenet(),
        },
        resnet(
            "resnet18",
            "benches/resnet18_full.yml",
            "scenarios/bench_resnet18_fixture.yml",
        ),
        resnet(
            "resnet18_weights",
            "benches/resnet18_full_weights.yml",
            "scenarios/bench_resnet18_fixture_weights.yml",
        ),
    ];
    let results = PathBuf::from("target/bench-results");
    std::fs::create_dir_all(&results).expect("results folder");
    if let Some(t) = threads {
        tch::set_num_threads(t);
    }
    for case in &cases {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        if let Some(missing) = case.needs.iter().find(|p| !Path::new(p).exists()) {
            println!("\n## {}: skipped, {missing} is absent", case.name);
            continue;
        }
        println!("\n## {}", case.name);
        let args = BenchArgs {
            repeat,
            chunk,
            threads,
            isolation: Isolation::Child {
                exe: PathBuf::from(env!("CARGO_BIN_EXE_faultsweep")),
            },
            ..BenchArgs::new(RunArgs::default())
        };
        let report = match bench::run(Path::new(case.scenario), &args) {
            Ok(r) => r,
            Err(e) => {
                println!("failed: {e}");
                std::process::exit(1);
            }
        };
        print!("{}", report.table());
        let path = results.join(format!("{}.json", case.name));
        let json = serde_json::to_string_pretty(&report).expect("report serializes");
        std::fs::write(&path, json + "\n").expect("results file");
        println!("(JSON: {})", path.display());
        if report
            .agreement
            .as_ref()
            .is_some_and(|a| !a.differing.is_empty())
        {
            println!("engine and full forward outcomes differ");
            std::process::exit(10);
        }
    }
}
