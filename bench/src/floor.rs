//! The floor: the fastest this machine delivers the same frames to the same endpoint, with
//! nothing of the service in the way — no Lambda invocation, no DynamoDB read, the recipients
//! known. It pushes with the service's own push client (`shared::push::ManagementApi`: one
//! pooled HTTP/1.1 client, each request signed with SigV4 as `@connections` requires), at each
//! of [`CONCURRENCIES`], and keeps the fastest. The service does all of this and more, so
//! "ours ÷ floor" is at least 1 by construction, and says how far it is from the limit.
//!
//! The floor pushes from a thread and a runtime of its own ([`FloorThread`]), as the service
//! pushes from processes of its own: in the benchmark's runtime, beside the local gateway and a
//! thousand WebSocket clients, it was slower than the service it is the floor of.
//!
//! (The floor used to be a reqwest client at 64 at once; the service, with its leaner client,
//! then beat it, and the ratio measured the floor's client, not the service.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use futures_util::{stream, StreamExt};
use shared::push::{Delivery, ManagementApi, Push, PushLimits};

/// The pushes in flight at once that the floor tries; the fastest wins.
pub const CONCURRENCIES: [usize; 4] = [16, 64, 128, 256];

/// A push client like the one each function builds at init, signing with `sdk`'s credentials.
pub fn client(sdk: &SdkConfig) -> ManagementApi {
    ManagementApi::new(sdk, PushLimits::new(Duration::from_secs(30)))
}

/// One delivery for the floor thread to make.
struct Job {
    endpoint: String,
    ids: Arc<Vec<String>>,
    data: String,
    concurrency: usize,
    done: tokio::sync::oneshot::Sender<Instant>,
}

/// The floor's pushes, on a thread with a runtime of its own (two workers, as a function's),
/// its push client kept warm across deliveries.
pub struct FloorThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl FloorThread {
    pub fn start(sdk: &SdkConfig) -> FloorThread {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let sdk = sdk.clone();
        std::thread::Builder::new()
            .name("floor".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the floor's runtime");
                let client = client(&sdk);
                for job in queue {
                    let last = runtime.block_on(push_all(
                        &client,
                        &job.endpoint,
                        &job.ids,
                        &job.data,
                        job.concurrency,
                    ));
                    let _ = job.done.send(last);
                }
            })
            .expect("the floor's thread");
        FloorThread { jobs }
    }

    /// [`push_all`] on the floor's thread; when the last push was answered.
    pub async fn push_all(
        &self,
        endpoint: &str,
        ids: &Arc<Vec<String>>,
        data: &str,
        concurrency: usize,
    ) -> Instant {
        let (done, finished) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job {
                endpoint: endpoint.to_owned(),
                ids: ids.clone(),
                data: data.to_owned(),
                concurrency,
                done,
            })
            .expect("the floor's thread is running");
        finished.await.expect("the floor's thread answers")
    }
}

/// Pushes `data` to each of `ids` at `endpoint`, `concurrency` at once; when the last one was
/// answered.
pub async fn push_all(
    client: &ManagementApi,
    endpoint: &str,
    ids: &[String],
    data: &str,
    concurrency: usize,
) -> Instant {
    stream::iter(ids)
        .map(|id| client.post(endpoint, id, data))
        .buffer_unordered(concurrency)
        .for_each(|delivery| async move {
            assert_eq!(
                delivery.expect("a floor push"),
                Delivery::Delivered,
                "every floor recipient is connected"
            );
        })
        .await;
    Instant::now()
}

/// The fastest of several measurements, and the concurrency that gave it.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    pub time: Duration,
    pub concurrency: usize,
}

impl Floor {
    /// No measurement yet: anything is faster.
    pub fn none() -> Floor {
        Floor {
            time: Duration::MAX,
            concurrency: 0,
        }
    }

    /// Keeps the median of `times`, measured at `concurrency`, if it is faster.
    pub fn consider(&mut self, concurrency: usize, mut times: Vec<Duration>) {
        times.sort();
        if let Some(&median) = times.get(times.len() / 2) {
            if median < self.time {
                *self = Floor {
                    time: median,
                    concurrency,
                };
            }
        }
    }

    /// The floor over [`CONCURRENCIES`]: `measure(concurrency)` times one delivery; each
    /// concurrency keeps its median of `rounds`, and the fastest median is the floor.
    pub async fn measure<F, Fut>(rounds: usize, mut measure: F) -> Floor
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = Duration>,
    {
        let mut best = Floor::none();
        for concurrency in CONCURRENCIES {
            let mut times = Vec::with_capacity(rounds);
            for _ in 0..rounds.max(1) {
                times.push(measure(concurrency).await);
            }
            best.consider(concurrency, times);
        }
        best
    }
}
