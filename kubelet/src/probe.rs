//! Liveness, readiness and startup probes (exec, httpGet, tcpSocket) with their timing.
