//! Writes the man pages and shell completions from the one clap declaration
//! (`hookgate::cli`), so `hookgate --help` and the manual never disagree.
//!
//!   cargo run --example gen_docs -- target/assets
//!
//! produces `man/hookgate.1`, one `man/hookgate-<subcommand>.1` per
//! subcommand, and `completions/{hookgate.bash,_hookgate,hookgate.fish}`.
//! `packaging/build-deb.sh` runs it before `cargo deb`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/assets".to_string()));
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;

    let command = hookgate::cli::Cli::command();
    write_man(&command, &man, "hookgate")?;
    for sub in command.get_subcommands() {
        let name = format!("hookgate-{}", sub.get_name());
        // No `.version()` here: clap would then list -V, which a subcommand refuses.
        let page = sub.clone().display_name(name.clone()).bin_name(format!("hookgate {}", sub.get_name()));
        write_man(&page, &man, &name)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command.clone(), "hookgate", &completions)?;
    }
    println!("wrote {} and {}", man.display(), completions.display());
    Ok(())
}

fn write_man(command: &clap::Command, dir: &Path, name: &str) -> std::io::Result<()> {
    let mut page = Vec::new();
    // The version goes in the page's footer, as "hookgate 0.1.0".
    let source = format!("hookgate {}", env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(command.clone()).source(source).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)
}
