//! `cargo xtask bench audit`: what the audit trail costs, in one run on this machine.
//!
//! Record creates and gets through the real public router (in process, 50 concurrent
//! callers) with the real audit store, then with the audit store swapped for one that keeps
//! nothing. That swap exists only here, in the benchmark harness, never as a runtime setting.
//! Then durable audit appends per second (50 concurrent writers) beside single fsyncs per
//! second on the same disk.
//!
//! `audit_bench serve-without-trail --config FILE` runs the whole server (TLS listeners and
//! all) with that store instead of its audit database, so `cargo xtask bench audit` can load
//! it over TLS with `wrk` beside the real binary, as clients meet the server.

use axum::body::Body;
use axum::http::Request;
use std::sync::Arc;

/// The server binary's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use strongroom_api::{AppState, Limits, Metrics};
use strongroom_service::{
    AuditRecord, Platform, PlatformOptions, SystemClock, master_key_file, sqlite_store_opener,
};
use strongroom_storage::sqlite::{SqliteAuditStore, SqliteControlStore};
use strongroom_storage::{
    AuditCheckpointRow, AuditEntry, AuditQuery, AuditRow, AuditSealer, AuditStore, PendingWrite,
    StorageError, StoredSigningKey,
};
use tower::ServiceExt;

const CALLERS_DEFAULT: usize = 50;

/// Concurrent callers: 50, or `BENCH_CALLERS` to see whether a rate is bound by waiting.
fn callers() -> usize {
    std::env::var("BENCH_CALLERS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(CALLERS_DEFAULT)
}

/// Keeps nothing: what the requests cost without an audit trail.
#[derive(Default)]
struct NoAudit {
    sequence: AtomicU64,
    key: std::sync::Mutex<Option<StoredSigningKey>>,
}

impl AuditStore for NoAudit {
    fn append(&self, _entry: AuditEntry, _sealer: AuditSealer) -> PendingWrite<u64> {
        let (reply, pending) = PendingWrite::channel();
        reply.send(Ok(self.sequence.fetch_add(1, Ordering::Relaxed) + 1));
        pending
    }
    fn events(&self, _query: &AuditQuery) -> Result<Vec<AuditRow>, StorageError> {
        Ok(Vec::new())
    }
    fn chain_events(&self, _: &str, _: u64, _: u32) -> Result<Vec<AuditRow>, StorageError> {
        Ok(Vec::new())
    }
    fn chains(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn head(&self, _: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        Ok(None)
    }
    fn add_checkpoint(&self, _: AuditCheckpointRow) -> Result<(), StorageError> {
        Ok(())
    }
    fn last_checkpoint(&self, _: &str) -> Result<Option<AuditCheckpointRow>, StorageError> {
        Ok(None)
    }
    fn checkpoints_after(
        &self,
        _: &str,
        _: u64,
        _: u32,
    ) -> Result<Vec<AuditCheckpointRow>, StorageError> {
        Ok(Vec::new())
    }
    fn last_event_before(&self, _: &str, _: i64) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        Ok(None)
    }
    fn remove_events_through(&self, _: &str, _: u64) -> Result<u64, StorageError> {
        Ok(0)
    }
    fn signing_key(&self) -> Result<Option<StoredSigningKey>, StorageError> {
        Ok(self.key.lock().unwrap().clone())
    }
    fn set_signing_key(&self, key: StoredSigningKey) -> Result<StoredSigningKey, StorageError> {
        let mut stored = self.key.lock().unwrap();
        Ok(stored.get_or_insert(key).clone())
    }
}

struct Setup {
    _directory: tempfile::TempDir,
    platform: Arc<Platform>,
    /// The real audit store's writer counts (none for the store that keeps nothing).
    audit_writer: Option<Arc<strongroom_storage::sqlite::WriterCounts>>,
    router: axum::Router,
    token: String,
}

async fn setup(audit: Option<Arc<dyn AuditStore>>) -> Setup {
    let directory =
        tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or(".".into())).unwrap();
    let data_dir = directory.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let (master, _) =
        master_key_file::read_or_create(&directory.path().join("keys/master.key")).unwrap();
    let with_files = audit.is_none();
    let (audit, audit_writer): (Arc<dyn AuditStore>, _) = match audit {
        Some(audit) => (audit, None),
        None => {
            let store = SqliteAuditStore::open(&data_dir.join("audit.db")).unwrap();
            let counts = store.writer_counts();
            (Arc::new(store), Some(counts))
        }
    };
    let platform = Platform::open(
        Arc::new(SqliteControlStore::open(&data_dir.join("control.db")).unwrap()),
        audit,
        sqlite_store_opener(data_dir.clone()),
        master,
        PlatformOptions {
            key_file: None,
            page_limit_default: 100,
            page_limit_max: 1000,
            documents: strongroom_service::DocumentLimits {
                file_bytes_max: 1 << 30,
                tenant_quota_bytes: 1 << 40,
                version_retention_days: 30,
                trash_retention_days: 90,
                transfers_max: 64,
            },
            password_hashing: strongroom_crypto::PasswordHashing::default(),
            public_url: "https://127.0.0.1:8443".into(),
            outbound_allow_private_networks: false,
            support_networks: Vec::new(),
            // The audited setup writes the daily files too, as the server does by default.
            audit_log_dir: with_files.then(|| data_dir.join("audit-logs")),
            audit_retention_days: 400,
            audit_checkpoint_every_events: 10_000,
            smtp: None,
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    platform
        .create_tenant("bench", "Bench", "eu")
        .await
        .unwrap();
    let token = platform
        .create_token(
            "bench",
            "bench",
            &["records:read".into(), "records:write".into()],
            None,
        )
        .await
        .unwrap()
        .secret;
    let router = strongroom_api::public_router(AppState {
        platform: platform.clone(),
        limits: Limits {
            body_bytes_max: 1 << 20,
        },
        metrics: Arc::new(Metrics::default()),
        trusted_proxies: Vec::new().into(),
    });
    let setup = Setup {
        _directory: directory,
        platform,
        audit_writer,
        router,
        token,
    };
    let answer = call(
        &setup,
        "PUT",
        "/v1/tenants/bench/collections/items",
        Some("{}"),
    )
    .await;
    assert!(answer.is_success(), "{answer}");
    setup
}

/// Sends one request as the bench token's holder, from 127.0.0.1.
async fn send(
    setup: &Setup,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> axum::response::Response {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", setup.token))
        .header("content-type", "application/json")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))))
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_owned())))
        .unwrap();
    setup.router.clone().oneshot(request).await.unwrap()
}

async fn call(
    setup: &Setup,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> axum::http::StatusCode {
    send(setup, method, uri, body).await.status()
}

/// Requests per second from `CALLERS` concurrent callers for `seconds`.
type MakeRequest = Arc<dyn Fn(u64) -> (String, Option<String>) + Send + Sync>;

async fn rate(setup: &Arc<Setup>, seconds: u64, make: MakeRequest, method: &'static str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers())
        .map(|caller| {
            let (setup, done, make) = (setup.clone(), done.clone(), make.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < until {
                    let (uri, body) = make(caller as u64 * 1_000_000 + n);
                    let status = call(&setup, method, &uri, body.as_deref()).await;
                    assert!(status.is_success(), "{method} {uri}: {status}");
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn creates() -> MakeRequest {
    Arc::new(|n| {
        (
            "/v1/tenants/bench/collections/items/records".into(),
            Some(format!("{{\"title\":\"item {n}\"}}")),
        )
    })
}

fn gets(record: String) -> MakeRequest {
    Arc::new(move |_| {
        (
            format!("/v1/tenants/bench/collections/items/records/{record}"),
            None,
        )
    })
}

async fn first_record(setup: &Setup) -> String {
    let response = send(
        setup,
        "POST",
        "/v1/tenants/bench/collections/items/records",
        Some("{\"title\":\"read me\"}"),
    )
    .await;
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Durable audit appends per second from `CALLERS` concurrent writers.
async fn append_rate(platform: &Arc<Platform>, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers())
        .map(|_| {
            let (platform, done) = (platform.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    platform
                        .audit(AuditRecord {
                            tenant_slug: Some("bench".into()),
                            phase: "request",
                            listener: "public",
                            method: "GET".into(),
                            route: "/bench".into(),
                            action: "bench".into(),
                            outcome: "allowed",
                            ..AuditRecord::default()
                        })
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Small appends with an fsync each, on the same disk: how many a second, and the CPU time
/// (user and system, of this thread) each one costs.
fn fsync_rate(seconds: u64) -> (f64, Duration) {
    use std::io::Write;
    let directory =
        tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or(".".into())).unwrap();
    let mut file = std::fs::File::create(directory.path().join("fsync")).unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let cpu_before = thread_cpu_time();
    let mut count = 0u64;
    while Instant::now() < until {
        file.write_all(&[0u8; 200]).unwrap();
        file.sync_data().unwrap();
        count += 1;
    }
    let cpu = thread_cpu_time() - cpu_before;
    (
        count as f64 / started.elapsed().as_secs_f64(),
        cpu / count.max(1) as u32,
    )
}

/// User and system CPU time so far of the calling thread (`RUSAGE_THREAD`) or of the whole
/// process (`RUSAGE_SELF`).
fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(who, &mut usage), 0);
        usage
    };
    let time = |value: libc::timeval| {
        Duration::from_secs(value.tv_sec as u64) + Duration::from_micros(value.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn thread_cpu_time() -> Duration {
    cpu_time(libc::RUSAGE_THREAD)
}

/// One phase of requests: its rate, the CPU time the whole process spent per request, how
/// busy that kept the machine, and (audited setups) the average group-commit size.
struct Measured {
    rate: f64,
    cpu_micros: f64,
    busy: f64,
    group: Option<f64>,
}

async fn measure(
    setup: &Arc<Setup>,
    seconds: u64,
    make: MakeRequest,
    method: &'static str,
) -> Measured {
    let read_counts = || {
        setup.audit_writer.as_ref().map(|counts| {
            (
                counts.commits.load(Ordering::SeqCst)
                    + counts.failed_commits.load(Ordering::SeqCst),
                counts.jobs_run.load(Ordering::SeqCst),
            )
        })
    };
    let counts_before = read_counts();
    let (cpu_before, started) = (cpu_time(libc::RUSAGE_SELF), Instant::now());
    let rate = rate(setup, seconds, make, method).await;
    let (cpu, wall) = (cpu_time(libc::RUSAGE_SELF) - cpu_before, started.elapsed());
    let group =
        counts_before
            .zip(read_counts())
            .map(|((commits, jobs), (commits_after, jobs_after))| {
                (jobs_after - jobs) as f64 / (commits_after - commits).max(1) as f64
            });
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    Measured {
        rate,
        cpu_micros: cpu.as_secs_f64() * 1e6 / (rate * wall.as_secs_f64()),
        busy: cpu.as_secs_f64() / (wall.as_secs_f64() * cores),
        group,
    }
}

/// The server as the binary runs it, except that its audit store keeps nothing.
fn serve_without_trail() {
    let config_file = std::env::args()
        .skip_while(|argument| argument != "--config")
        .nth(1)
        .expect("serve-without-trail --config FILE");
    let flags = strongroom::config::ConfigFlags {
        config: Some(config_file.into()),
        ..Default::default()
    };
    let config = strongroom::config::Config::load(&flags).expect("the configuration");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(strongroom::serve::run_with_audit_store(
            config,
            Some(Arc::new(NoAudit::default())),
        ))
        .expect("the server without a trail");
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("serve-without-trail") {
        return serve_without_trail();
    }
    let seconds: u64 = std::env::args()
        .skip_while(|argument| argument != "--seconds")
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `--only [un]audited-gets|[un]audited-creates`: one phase alone, to profile it.
    let only: Option<String> = std::env::args()
        .skip_while(|argument| argument != "--only")
        .nth(1);
    runtime.block_on(async {
        if let Some(phase) = only {
            let store: Option<Arc<dyn AuditStore>> = match phase.starts_with("unaudited") {
                true => Some(Arc::new(NoAudit::default())),
                false => None,
            };
            let setup = Arc::new(setup(store).await);
            let record = first_record(&setup).await;
            let (make, method) = match phase.trim_start_matches("un") {
                "audited-gets" => (gets(record), "GET"),
                "audited-creates" => (creates(), "POST"),
                _ => panic!("--only [un]audited-gets or [un]audited-creates"),
            };
            println!("{phase}: {:.0}/s", rate(&setup, seconds, make, method).await);
            return;
        }
        let audited = Arc::new(setup(None).await);
        let unaudited = Arc::new(setup(Some(Arc::new(NoAudit::default()))).await);
        let audited_record = first_record(&audited).await;
        let unaudited_record = first_record(&unaudited).await;
        let audited_creates = measure(&audited, seconds, creates(), "POST").await;
        let unaudited_creates = measure(&unaudited, seconds, creates(), "POST").await;
        let audited_gets = measure(&audited, seconds, gets(audited_record), "GET").await;
        let unaudited_gets = measure(&unaudited, seconds, gets(unaudited_record), "GET").await;
        let appends = append_rate(&audited.platform, seconds).await;
        let (fsyncs, fsync_cpu) = fsync_rate(seconds.min(5));
        println!("\nAudit benchmark, {} concurrent callers, in process (no TLS), {seconds} s each, one run", callers());
        println!("  operation   audited/s  without audit/s  ratio   target");
        let verdict = |ratio: f64, target: f64| if ratio >= target { "met" } else { "MISSED" };
        for (name, audited, unaudited) in [
            ("creates", &audited_creates, &unaudited_creates),
            ("gets   ", &audited_gets, &unaudited_gets),
        ] {
            let ratio = audited.rate / unaudited.rate;
            println!(
                "  {name}  {:>12.0} {:>16.0}  {ratio:>5.2}   0.90 {}",
                audited.rate,
                unaudited.rate,
                verdict(ratio, 0.9)
            );
        }
        println!("  durable audit appends: {appends:.0}/s; single fsyncs on the same disk: {fsyncs:.0}/s; ratio {:.1} (target well above 1)", appends / fsyncs);

        // Where the time goes: CPU per request of the whole process, audited and not.
        println!("\nCPU per request (user + system, whole process) and how busy the cores were:");
        for (name, audited, unaudited) in [
            ("creates", &audited_creates, &unaudited_creates),
            ("gets   ", &audited_gets, &unaudited_gets),
        ] {
            println!(
                "  {name}  audited {:>6.1} µs ({:>3.0}% busy), without audit {:>6.1} µs ({:>3.0}% busy): the trail adds {:.1} µs; 0.90 allows {:.1} µs",
                audited.cpu_micros,
                audited.busy * 100.0,
                unaudited.cpu_micros,
                unaudited.busy * 100.0,
                audited.cpu_micros - unaudited.cpu_micros,
                unaudited.cpu_micros * (1.0 / 0.9 - 1.0)
            );
        }
        // What the disk alone allows: an audited get costs at least the unaudited one plus its
        // share of one fsync's CPU time, whatever building, sealing and storing its event cost.
        let get_cpu = unaudited_gets.cpu_micros;
        let fsync_cpu = fsync_cpu.as_secs_f64() * 1e6;
        let cap = |group: f64| get_cpu / (get_cpu + fsync_cpu / group);
        let gets_group = audited_gets.group.unwrap_or(1.0);
        println!("\nWhat the disk alone allows:");
        println!(
            "  one fsync costs {fsync_cpu:.1} µs of CPU on this disk; audit events shared each commit {gets_group:.1} at a time during gets, {:.1} during creates ({} callers at most)",
            audited_creates.group.unwrap_or(1.0),
            callers()
        );
        println!("  fsyncs alone cap audited gets at {:.2} of the unaudited rate at that group size, {:.2} if every caller shared every commit", cap(gets_group), cap(callers() as f64));
    });
}
