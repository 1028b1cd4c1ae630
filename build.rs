//! Link-time choices for agentcred on Linux with glibc, measured in docs/performance.md
//! ("2026-11-30, third pass"): every `agentcred exec` is a process start-up, and on a VM
//! most of what start-up costs beyond a C program's is the dynamic loader's work.
//!
//! - The unwinder linked in (`libgcc_eh.a`, what a static build uses) instead of loading
//!   `libgcc_s.so.1`: loading it costs a file lookup, five mappings, relocations and its
//!   constructor, which runs a dozen `cpuid` instructions (each one a trap to the
//!   hypervisor on a VM): about 0.15 ms of every run on the 2-core test VM.
//! - Packed relative relocations (`-z pack-relative-relocs`, DT_RELR): the 15,000
//!   relocations of the binary's vtables and string tables in 4 kB instead of 370 kB
//!   that the loader reads at every start: about 0.8 MiB less peak RSS for every command.
//!   Only when the C library linked against supports them (glibc 2.36 and later), since
//!   the binary then needs that glibc to run.
//! - The functions the common commands run placed side by side (`bench/hot-functions.txt`,
//!   written by `bench/order.sh`, given to the linker as `--symbol-ordering-file`): the
//!   kernel maps code 64 kB around each page a command touches, so code run from all over
//!   the 9 MB of text cost about 5 MiB of every command's peak RSS; together it is about
//!   1.7 MiB. Only when the linker takes the option (lld, Rust's default linker here),
//!   which a trial link checks.
//!
//! Both are skipped when cross-compiling or when the toolchain does not have what they
//! need; the build is then the ordinary one.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    // The file the C compiler links for `name`, if it has one (it prints the bare name
    // back when it does not).
    let file = |name: &str| -> Option<PathBuf> {
        let out = Command::new(&cc)
            .arg(format!("-print-file-name={name}"))
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
    };
    // `-lgcc_s` (which the standard library asks for) finds this `libgcc_s.a` first: a
    // copy of the static unwinder, in a directory searched before the compiler's own.
    if let (Some(eh), Ok(out)) = (file("libgcc_eh.a"), std::env::var("OUT_DIR")) {
        let dir = PathBuf::from(out).join("unwinder");
        if std::fs::create_dir_all(&dir).is_ok()
            && std::fs::copy(&eh, dir.join("libgcc_s.a")).is_ok()
        {
            println!("cargo:rustc-link-search=native={}", dir.display());
        }
    }
    if file("libc.so.6")
        .and_then(|libc| std::fs::read(libc).ok())
        .is_some_and(|bytes| {
            bytes
                .windows(b"GLIBC_ABI_DT_RELR".len())
                .any(|w| w == b"GLIBC_ABI_DT_RELR")
        })
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    order_functions();
}

/// Pass `bench/hot-functions.txt` to the linker when it takes an ordering file. Names it
/// no longer finds (they carry hashes that change with the compiler and dependencies) are
/// skipped without a warning: a stale file costs memory, not correctness.
fn order_functions() {
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = PathBuf::from(dir).join("bench/hot-functions.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if !order.is_file() {
        return;
    }
    let args = [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ];
    if links_with(&args) {
        for arg in args {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// Whether rustc, with this build's flags and linker, links a program with `args` for the
/// linker (a linker set in Cargo's config reaches rustc as `-C linker`, not in the flags).
fn links_with(args: &[String]) -> bool {
    let (Ok(rustc), Ok(out)) = (std::env::var("RUSTC"), std::env::var("OUT_DIR")) else {
        return false;
    };
    let out = PathBuf::from(out);
    let source = out.join("probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut command = Command::new(rustc);
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    command.args(flags.split('\x1f').filter(|flag| !flag.is_empty()));
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        command.arg("-C").arg(format!("linker={linker}"));
    }
    for arg in args {
        command.arg("-C").arg(format!("link-arg={arg}"));
    }
    command
        .arg("--target")
        .arg(std::env::var("TARGET").unwrap_or_default())
        .arg("-o")
        .arg(out.join("probe"))
        .arg(&source)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .current_dir(&out)
        .status()
        .is_ok_and(|status| status.success())
}
