import Logging
import ServiceLifecycle
import Synchronization

/// The scheduler as a service of `datenwerk serve`: stops ticking on graceful shutdown.
package struct SchedulerService: Service {
    let scheduler: Scheduler
    let interval: Duration

    package init(_ scheduler: Scheduler, interval: Duration = .seconds(5)) {
        self.scheduler = scheduler
        self.interval = interval
    }

    package func run() async throws {
        try await cancelWhenGracefulShutdown {
            await scheduler.run(interval: interval)
        }
    }
}

/// Workers inside `datenwerk serve`. On graceful shutdown they take no new job and let the running one
/// finish (systemd's stop timeout bounds that; a worker killed later leaves a lease that expires).
package struct WorkerService: Service {
    let workers: [Worker]

    package init(_ workers: [Worker]) { self.workers = workers }

    package func run() async throws {
        let stopping = StopFlag()
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in workers {
                    group.addTask { try await worker.run(shouldStop: { stopping.isSet }) }
                }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            stopping.set()
        }
    }
}

final class StopFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
