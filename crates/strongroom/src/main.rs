//! `strongroom`: the server and its admin command line, in one binary.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use strongroom::config::{self, Config, ConfigFlags, LogFormat};
use strongroom::{cli, serve};

/// mimalloc instead of glibc's allocator: requests allocate on the runtime's threads and the
/// storage writers free, and glibc's arenas spent about a sixth of a busy server's time on
/// that (a profile of audited reads, see ARCHITECTURE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "strongroom",
    version,
    about = "Tenant-isolated, encrypted data platform"
)]
struct Arguments {
    #[command(flatten)]
    config: ConfigFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: public API and admin listener, both over TLS.
    Serve,
    /// Manage tenants through the admin API.
    Tenant {
        #[command(flatten)]
        connection: cli::AdminConnection,
        #[command(subcommand)]
        command: cli::TenantCommand,
    },
    /// Manage tenant API tokens through the admin API.
    Token {
        #[command(flatten)]
        connection: cli::AdminConnection,
        #[command(subcommand)]
        command: cli::TokenCommand,
    },
    /// Operator accounts: invite, enrol with TOTP, sign in, disable.
    Operator {
        #[command(flatten)]
        connection: cli::AdminConnection,
        #[command(subcommand)]
        command: cli::OperatorCommand,
    },
    /// Break-glass access to a tenant's data (operators with an account).
    SupportAccess {
        #[command(flatten)]
        connection: cli::AdminConnection,
        #[command(subcommand)]
        command: cli::SupportAccessCommand,
    },
    /// Check the audit trail through the admin API.
    Audit {
        #[command(flatten)]
        connection: cli::AdminConnection,
        #[command(subcommand)]
        command: cli::AuditCommand,
    },
    /// Rotate keys through the admin API.
    Keys {
        #[command(flatten)]
        connection: cli::AdminConnection,
        #[command(subcommand)]
        command: cli::KeysCommand,
    },
    /// Print the resolved configuration (file, then environment, then flags) as TOML.
    Config,
    /// Time one Argon2id password hash at the configured cost (to calibrate the cost).
    HashTiming {
        /// Hashes to time.
        #[arg(long, default_value_t = 20)]
        count: u32,
    },
}

fn main() -> std::process::ExitCode {
    let arguments = Arguments::parse();
    let config = match Config::load(&arguments.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("strongroom: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("strongroom: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(arguments.command, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("strongroom: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let output = match command {
        Command::Serve => return serve::run(config).await,
        Command::HashTiming { count } => {
            let hashing = strongroom_crypto::PasswordHashing::default();
            let started = std::time::Instant::now();
            for _ in 0..count.max(1) {
                hashing.hash("calibration password")?;
            }
            let milliseconds = started.elapsed().as_secs_f64() * 1000.0 / f64::from(count.max(1));
            println!(
                "{}",
                serde_json::json!({"algorithm": "argon2id", "memory_kib": hashing.memory_kib, "passes": hashing.passes, "lanes": hashing.lanes, "milliseconds_per_hash": milliseconds})
            );
            return Ok(());
        }
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            println!("\n# Environment variables (they override the file; flags override them):");
            for (name, sets) in config::ENVIRONMENT {
                println!("#   {name:<30} {sets}");
            }
            return Ok(());
        }
        Command::Tenant {
            connection,
            command,
        } => cli::tenant(&cli::AdminClient::new(&config, &connection)?, command).await?,
        Command::Token {
            connection,
            command,
        } => cli::token(&cli::AdminClient::new(&config, &connection)?, command).await?,
        Command::Keys {
            connection,
            command,
        } => cli::keys(&cli::AdminClient::new(&config, &connection)?, command).await?,
        Command::Operator {
            connection,
            command,
        } => cli::operator(&config, &connection, command).await?,
        Command::Audit {
            connection,
            command,
        } => cli::audit(&cli::AdminClient::new(&config, &connection)?, command).await?,
        Command::SupportAccess {
            connection,
            command,
        } => cli::support_access(&cli::AdminClient::new(&config, &connection)?, command).await?,
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
