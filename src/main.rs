//! The `agentcred` binary: everything happens in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    agentcred::cli::main()
}
