fn main() -> std::process::ExitCode {
    runbook::main()
}
