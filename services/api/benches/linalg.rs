//! Criterion benchmarks for every `linalg` operation at n = 8, 64, 256, 512.
//!
//! Inputs are deterministic (xorshift) and well conditioned: diagonally
//! dominant for the general operations, symmetric positive definite for
//! Cholesky and the eigendecomposition. Group names are `operation/n`, e.g.
//! `multiply/256`.
//!
//! `solve` uses an n×n right-hand side (as `numpy.linalg.solve(a, b)` with a
//! square `b`), `solve_vector` an n×1 one, and `solve_tall` a 2n×n
//! least-squares system.
//!
//! faer's global parallelism defaults to all cores; set
//! `LINALG_BENCH_PAR=seq` (or a thread count) to benchmark another setting,
//! as the service would configure at start-up.

use std::hint::black_box;
use std::time::Duration;

use axiom25_api::linalg::{
    CancelToken, DecompositionKind, Dense, analyze, decompose, determinant, invert, multiply, solve,
};
use axiom25_testkit::Xorshift;
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};

const SIZES: [usize; 4] = [8, 64, 256, 512];

/// Deterministic entries in [-0.5, 0.5).
fn random(rows: usize, cols: usize, seed: u64) -> Dense {
    Dense::new(rows, cols, Xorshift::new(seed).take(rows * cols, |x| x - 0.5))
}

/// Random with `n` added to the diagonal: strictly diagonally dominant.
fn well_conditioned(n: usize, seed: u64) -> Dense {
    let mut data = random(n, n, seed).into_data();
    for i in 0..n {
        data[i * n + i] += n as f64;
    }
    Dense::new(n, n, data)
}

/// `(r + rᵀ)/2 + n·I`: symmetric positive definite.
fn spd(n: usize, seed: u64) -> Dense {
    let r = random(n, n, seed).into_data();
    let mut data = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            data[i * n + j] = (r[i * n + j] + r[j * n + i]) / 2.0;
        }
        data[i * n + i] += n as f64;
    }
    Dense::new(n, n, data)
}

fn configure_parallelism() {
    match std::env::var("LINALG_BENCH_PAR").as_deref() {
        Ok("seq") => faer::set_global_parallelism(faer::Par::Seq),
        Ok(threads) => {
            if let Ok(n) = threads.parse::<usize>() {
                faer::set_global_parallelism(faer::Par::rayon(n));
            }
        }
        Err(_) => {}
    }
}

/// Runs `routine` for every size, with short runs for large sizes so that the
/// whole suite takes a few minutes on two cores.
fn bench_sizes<I>(c: &mut Criterion, name: &str, setup: impl Fn(usize) -> I, routine: impl Fn(&I, &CancelToken)) {
    let token = CancelToken::new();
    let mut group = c.benchmark_group(name);
    for n in SIZES {
        if n >= 256 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2))
                .sampling_mode(SamplingMode::Flat);
        } else {
            group
                .sample_size(20)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1))
                .sampling_mode(SamplingMode::Auto);
        }
        let input = setup(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |bencher, input| {
            bencher.iter(|| routine(black_box(input), &token));
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    configure_parallelism();

    bench_sizes(
        c,
        "multiply",
        |n| (random(n, n, 1), random(n, n, 2)),
        |(a, b), t| {
            black_box(multiply(a, b, t).ok());
        },
    );
    bench_sizes(
        c,
        "solve",
        |n| (well_conditioned(n, 3), random(n, n, 4)),
        |(a, b), t| {
            black_box(solve(a, b, t).ok());
        },
    );
    bench_sizes(
        c,
        "solve_vector",
        |n| (well_conditioned(n, 5), random(n, 1, 6)),
        |(a, b), t| {
            black_box(solve(a, b, t).ok());
        },
    );
    bench_sizes(
        c,
        "solve_tall",
        |n| (random(2 * n, n, 7), random(2 * n, 1, 8)),
        |(a, b), t| {
            black_box(solve(a, b, t).ok());
        },
    );
    bench_sizes(
        c,
        "invert",
        |n| well_conditioned(n, 9),
        |a, t| {
            black_box(invert(a, t).ok());
        },
    );
    bench_sizes(
        c,
        "determinant",
        |n| well_conditioned(n, 10),
        |a, t| {
            black_box(determinant(a, t).ok());
        },
    );
    let decompositions = [
        ("decompose_lu", DecompositionKind::Lu),
        ("decompose_qr", DecompositionKind::Qr),
        ("decompose_cholesky", DecompositionKind::Cholesky),
        ("decompose_svd", DecompositionKind::Svd),
        ("decompose_eigen", DecompositionKind::Eigen),
    ];
    for (name, kind) in decompositions {
        bench_sizes(
            c,
            name,
            |n| match kind {
                DecompositionKind::Cholesky | DecompositionKind::Eigen => spd(n, 11),
                _ => well_conditioned(n, 11),
            },
            |a, t| {
                black_box(decompose(a, kind, t).ok());
            },
        );
    }
    bench_sizes(
        c,
        "analyze",
        |n| well_conditioned(n, 12),
        |a, t| {
            black_box(analyze(a, t).ok());
        },
    );
}

criterion_group!(linalg_benches, benches);
criterion_main!(linalg_benches);
