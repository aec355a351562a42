import NIOCore

/// A `TaskExecutor` over one NIO `EventLoop`: a task that prefers it runs its jobs on that loop's
/// thread, and so do the default actors it calls (SE-0417). The hot path serves a cache miss in
/// such a task, on the loop that read the request, and `CurlClient` runs that transfer in libcurl
/// on the same loop: the one thread change left is libcurl's socket watcher handing the ready
/// socket back, instead of a trip through the cooperative pool and back for every step
/// (docs/architecture.md, "The miss path").
///
/// A job enqueued from the loop's own thread runs later in the same loop iteration (no wake-up);
/// one enqueued from elsewhere wakes the loop once.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
