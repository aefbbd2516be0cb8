//! The QuickJS workers transformations run on: threads of their own, each with one runtime (heap capped, calls
//! interrupted on a deadline) and the handlers it has compiled, fed from one bounded queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rquickjs::{Context, Ctx, Function, Runtime};
use tokio::sync::{mpsc, oneshot};

use crate::webhook::{Transformed, Webhook, read_result};
use crate::{MAX_CODE_BYTES, MEMORY_LIMIT_BYTES, TIME_LIMIT, TransformError};

/// How many calls may wait for a worker; callers wait for room beyond that.
const QUEUE: usize = 256;
/// How many compiled handlers a worker keeps; past that it starts over.
const CACHED_HANDLERS: usize = 64;
/// The JavaScript stack of a call; deeper recursion throws a `RangeError`.
const STACK_BYTES: usize = 512 << 10;
/// Called with the webhook's JSON; runs the handler and answers the webhook to send, as JSON.
const RUNNER: &str = "function __hookrelay_run(input) { \
    const webhook = JSON.parse(input); const result = handler(webhook); \
    return JSON.stringify(result === undefined ? webhook : result); }";

/// The transformation workers. Dropping every handle to it stops them once the queue is empty.
#[derive(Clone)]
pub struct Sandbox {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

enum Job {
    Check { code: Arc<str>, reply: oneshot::Sender<Result<(), TransformError>> },
    Run { code: Arc<str>, input: String, reply: oneshot::Sender<Result<Transformed, TransformError>> },
}

impl Sandbox {
    /// Starts `workers` threads (at least one).
    pub fn start(workers: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..workers.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("hookrelay-transform-{index}"))
                .spawn(move || Worker::new().serve(&queue))?;
        }
        Ok(Self { jobs })
    }

    /// Compiles `code` (running its top-level statements) and checks that it declares `handler`.
    pub async fn check(&self, code: &str) -> Result<(), TransformError> {
        check_size(code)?;
        let (reply, answer) = oneshot::channel();
        self.send(Job::Check { code: Arc::from(code), reply }).await?;
        answer.await.map_err(|_| TransformError::Unavailable)?
    }

    /// Runs `code`'s handler on `webhook`.
    pub async fn run(&self, code: Arc<str>, webhook: &Webhook<'_>) -> Result<Transformed, TransformError> {
        check_size(&code)?;
        let (reply, answer) = oneshot::channel();
        self.send(Job::Run { code, input: webhook.to_json(), reply }).await?;
        answer.await.map_err(|_| TransformError::Unavailable)?
    }

    async fn send(&self, job: Job) -> Result<(), TransformError> {
        self.jobs.send(job).await.map_err(|_| TransformError::Unavailable)
    }
}

fn check_size(code: &str) -> Result<(), TransformError> {
    if code.len() > MAX_CODE_BYTES { Err(TransformError::TooLarge { bytes: code.len() }) } else { Ok(()) }
}

/// One worker thread's QuickJS runtime and the handlers compiled in it.
struct Worker {
    /// Declared before `runtime`: contexts must go first.
    contexts: HashMap<Arc<str>, Context>,
    runtime: Runtime,
    clock: Clock,
}

/// The deadline the interrupt handler checks, in nanoseconds since `epoch`; `u64::MAX` when no call runs.
#[derive(Clone)]
struct Clock {
    epoch: Instant,
    deadline: Arc<AtomicU64>,
}

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn arm(&self) {
        let limit = u64::try_from(TIME_LIMIT.as_nanos()).unwrap_or(u64::MAX);
        self.deadline.store(self.now().saturating_add(limit), Ordering::Relaxed);
    }

    fn expired(&self) -> bool {
        self.now() > self.deadline.load(Ordering::Relaxed)
    }

    fn disarm(&self) {
        self.deadline.store(u64::MAX, Ordering::Relaxed);
    }
}

impl Worker {
    fn new() -> Self {
        let clock = Clock { epoch: Instant::now(), deadline: Arc::new(AtomicU64::new(u64::MAX)) };
        Self { contexts: HashMap::new(), runtime: new_runtime(&clock), clock }
    }

    fn serve(mut self, queue: &Mutex<mpsc::Receiver<Job>>) {
        loop {
            // One worker waits on the queue at a time; the others wait for the lock.
            let job = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).blocking_recv();
            match job {
                Some(Job::Check { code, reply }) => {
                    let _ = reply.send(self.context(&code).map(|_| ()));
                }
                Some(Job::Run { code, input, reply }) => {
                    let _ = reply.send(self.run(&code, &input));
                }
                None => return,
            }
        }
    }

    fn run(&mut self, code: &Arc<str>, input: &str) -> Result<Transformed, TransformError> {
        let context = self.context(code)?;
        self.clock.arm();
        let output = context.with(|ctx| {
            let runner: Function =
                ctx.globals().get("__hookrelay_run").map_err(|err| failure(&ctx, err, &self.clock))?;
            runner.call::<_, String>((input,)).map_err(|err| failure(&ctx, err, &self.clock))
        });
        self.clock.disarm();
        match output {
            Ok(json) => read_result(&json),
            Err(err) => Err(self.recover(code, err)),
        }
    }

    /// The context with `code` compiled in it, from the cache or compiled now.
    fn context(&mut self, code: &Arc<str>) -> Result<Context, TransformError> {
        if let Some(context) = self.contexts.get(code) {
            return Ok(context.clone());
        }
        if self.contexts.len() >= CACHED_HANDLERS {
            self.contexts.clear();
        }
        let context = Context::full(&self.runtime).map_err(|_| self.recover(code, TransformError::OutOfMemory))?;
        self.clock.arm();
        let compiled = context.with(|ctx| compile(&ctx, code, &self.clock));
        self.clock.disarm();
        match compiled {
            Ok(()) => {
                self.contexts.insert(code.clone(), context.clone());
                Ok(context)
            }
            Err(err) => Err(self.recover(code, err)),
        }
    }

    /// After a failure: a handler stopped half-way is compiled again next time, and after running out of memory
    /// the whole runtime starts over.
    fn recover(&mut self, code: &Arc<str>, err: TransformError) -> TransformError {
        match err {
            TransformError::OutOfMemory => {
                self.contexts.clear();
                self.runtime = new_runtime(&self.clock);
            }
            TransformError::TimedOut => {
                self.contexts.remove(code);
            }
            _ => {}
        }
        err
    }
}

fn new_runtime(clock: &Clock) -> Runtime {
    let runtime = Runtime::new().expect("a QuickJS runtime (it fails only when out of memory at start)");
    runtime.set_memory_limit(MEMORY_LIMIT_BYTES);
    runtime.set_max_stack_size(STACK_BYTES);
    let clock = clock.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || clock.expired())));
    runtime
}

/// Runs the handler's code (its top-level statements too) and the runner in a fresh context.
fn compile(ctx: &Ctx<'_>, code: &str, clock: &Clock) -> Result<(), TransformError> {
    ctx.eval::<(), _>(code).map_err(|err| match failure(ctx, err, clock) {
        TransformError::Threw { message, line } if message.starts_with("SyntaxError") => {
            TransformError::Syntax { message, line }
        }
        other => other,
    })?;
    ctx.eval::<(), _>(RUNNER).map_err(|err| failure(ctx, err, clock))?;
    let declared: bool = ctx.eval("typeof handler === 'function'").map_err(|err| failure(ctx, err, clock))?;
    if declared { Ok(()) } else { Err(TransformError::NoHandler) }
}

/// What a failed evaluation means: stopped on the clock, out of memory, or the code threw (with the message and
/// the line of the handler's code it points at).
fn failure(ctx: &Ctx<'_>, err: rquickjs::Error, clock: &Clock) -> TransformError {
    if clock.expired() {
        return TransformError::TimedOut;
    }
    match err {
        rquickjs::Error::Allocation => TransformError::OutOfMemory,
        rquickjs::Error::Exception => {
            let thrown = ctx.catch();
            let (message, stack) = match thrown.as_exception() {
                Some(exception) => {
                    let name: String = exception.get("name").unwrap_or_else(|_| "Error".to_owned());
                    let message = exception.message().unwrap_or_default();
                    (format!("{name}: {message}"), exception.stack().unwrap_or_default())
                }
                None => (describe(&thrown), String::new()),
            };
            if message.contains("out of memory") {
                return TransformError::OutOfMemory;
            }
            TransformError::Threw { message, line: line_of(&stack) }
        }
        other => TransformError::Threw { message: other.to_string(), line: None },
    }
}

/// A thrown value that is not an `Error` (`throw "oops"`), as text.
fn describe(value: &rquickjs::Value<'_>) -> String {
    value
        .as_string()
        .and_then(|text| text.to_string().ok())
        .unwrap_or_else(|| format!("a thrown {}", value.type_name()))
}

/// The line in the handler's code that a QuickJS stack trace points at (`at handler (eval_script:3:9)`).
fn line_of(stack: &str) -> Option<u32> {
    let (_, rest) = stack.split_once("eval_script:")?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[cfg(test)]
mod tests;
