//! Runs one scenario and prints its summary: `cargo run -p culao-sim --example run_once --
//! FILE[#variant] SEED OUT`.
#![expect(clippy::print_stdout, reason = "an example prints its result")]

/// The allocator the `culao` binary runs the simulator with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(seed), Some(out)) = (args.get(1), args.get(2), args.get(3)) else {
        println!("usage: run_once FILE[#variant] SEED OUT");
        return;
    };
    let seed = seed.parse().unwrap_or(1);
    let started = std::time::Instant::now();
    let result = culao_sim::run_file(file.as_ref(), seed, out.as_ref(), true);
    println!(
        "{result:#?}\nwall: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
