//! The logger process containerd's shim starts for each container.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::writer::{pump_both, LogFile};
use super::LogLimits;

/// The query key of [`logger_uri`](super::logger_uri), hence the first argument the shim
/// passes: `keelson container-logger LOG_PATH`.
pub const LOGGER_SUBCOMMAND: &str = "container-logger";

/// How long the streams may stay open after SIGTERM. The shim closes its ends of the pipes
/// right before sending it and kills the logger 12 s later; this leaves time to write what
/// is still in the pipes without hanging on a writer that never closes its end.
const TERM_GRACE: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(3)
};
const POLL: Duration = Duration::from_millis(100);

static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Runs as a container's logger under containerd's shim and returns once both of the
/// container's streams are closed (or a few seconds after SIGTERM). Blocking; uses no
/// async runtime, so it may run before or inside one.
///
/// The shim passes the container's stdout and stderr as fds 3 and 4 and waits to start
/// the container until fd 5 is closed, which happens once the log file is open. If it
/// cannot be opened, the streams are still drained, so that the container is not killed by
/// SIGPIPE, and the error is returned at the end.
pub fn run_logger(log_path: &Path, limits: LogLimits) -> io::Result<()> {
    let stdout = take_pipe(3)?;
    let stderr = take_pipe(4)?;
    let ready = take_pipe(5)?;
    // Before signalling readiness: from then on the shim may send SIGTERM at any time,
    // and its default action would lose what is still in the pipes.
    install_sigterm_handler()?;
    let log = LogFile::open(log_path, limits);
    drop(ready);
    match log {
        Ok(log) => {
            let log = Arc::new(log);
            let copier = Arc::clone(&log);
            drain(move || pump_both(stdout, stderr, &copier))?;
            log.finish();
            Ok(())
        }
        Err(e) => {
            drain(move || {
                let (mut stdout, mut stderr) = (stdout, stderr);
                std::thread::scope(|s| {
                    s.spawn(|| io::copy(&mut stdout, &mut io::sink()));
                    let _ = io::copy(&mut stderr, &mut io::sink());
                });
            })?;
            Err(io::Error::new(
                e.kind(),
                format!("opening container log {}: {e}", log_path.display()),
            ))
        }
    }
}

/// [`run_logger`] with default limits, for the arguments after the subcommand (exactly
/// one: the log path). `main` can dispatch to it before parsing anything else:
///
/// ```no_run
/// use std::ffi::OsStr;
/// use keelson_kubelet::logs::{run_logger_from_args, LOGGER_SUBCOMMAND};
///
/// let mut args = std::env::args_os().skip(1);
/// if args.next().as_deref() == Some(OsStr::new(LOGGER_SUBCOMMAND)) {
///     run_logger_from_args(args)?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run_logger_from_args<I, S>(args: I) -> io::Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    match (args.next(), args.next()) {
        (Some(path), None) => run_logger(Path::new(&path), LogLimits::default()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("usage: keelson {LOGGER_SUBCOMMAND} LOG_PATH"),
        )),
    }
}

/// Takes ownership of an fd the shim passed, after checking that it is a pipe: run by
/// hand, fds 3-5 may be absent or belong to something else in this process.
fn take_pipe(fd: RawFd) -> io::Result<File> {
    // SAFETY: a zeroed `stat` is a valid value; fstat only writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any fd number is safe; it fails with EBADF if it is not open.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("fd {fd}: {e}; {LOGGER_SUBCOMMAND} is run by containerd's shim, which passes stdout, stderr and a wait pipe as fds 3, 4 and 5"),
        ));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is not a pipe; {LOGGER_SUBCOMMAND} is run by containerd's shim"),
        ));
    }
    // SAFETY: the fd is open (fstat succeeded) and was inherited from the shim, so nothing
    // else in this process owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    // SAFETY: fcntl on an fd this function now owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(file)
}

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::Relaxed);
}

fn install_sigterm_handler() -> io::Result<()> {
    // SAFETY: the handler only stores into an atomic, which is async-signal-safe; the
    // action struct is fully initialised before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs `work` on a thread until it returns, or until TERM_GRACE after SIGTERM: then the
/// process is about to exit and the thread, blocked in a read, is left behind. Nothing is
/// lost by that, as records are written whole and unbuffered.
fn drain(work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let (done, finished) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("log-copy".into())
        .spawn(move || {
            work();
            let _ = done.send(());
        })?;
    let mut deadline = None;
    loop {
        match finished.recv_timeout(POLL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Finished, or panicked and dropped the sender.
            _ => return Ok(()),
        }
        if TERMINATED.load(Ordering::Relaxed) {
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + TERM_GRACE);
            if Instant::now() >= deadline {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::cri::{parse_record, Stream};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    const CHILD_ENV: &str = "KEELSON_TEST_CONTAINER_LOGGER";
    const CHILD_TEST: &str = "logs::logger::tests::logger_child";

    /// Passes trivially in the test run; `logs_like_under_the_shim` runs the test binary
    /// again with only this test and CHILD_ENV set, as the shim would run the logger.
    #[test]
    fn logger_child() {
        let Some(path) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let code = match run_logger(Path::new(&path), LogLimits::default()) {
            Ok(()) => 0,
            Err(_) => 3,
        };
        std::process::exit(code);
    }

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array on success.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
        // SAFETY: both fds were just created and are owned by nobody else.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn logs_like_under_the_shim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("ns_pod_uid/app/0.log");
        let (out_r, mut out_w) = pipe();
        let (err_r, mut err_w) = pipe();
        let (mut wait_r, wait_w) = pipe();
        let passed = [out_r.as_raw_fd(), err_r.as_raw_fd(), wait_w.as_raw_fd()];

        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Copy out of the way first: a source may itself be 3, 4 or 5.
                let mut high = [0; 3];
                for (h, fd) in high.iter_mut().zip(passed) {
                    *h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                    if *h < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (target, h) in (3..).zip(high) {
                    if libc::dup2(h, target) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn logger");
        drop((out_r, err_r, wait_w));

        // As the shim: wait until the logger closes its end of the wait pipe.
        let mut byte = [0u8; 1];
        assert_eq!(wait_r.read(&mut byte).expect("read wait pipe"), 0);
        assert!(log.exists(), "ready before the log file exists");

        out_w.write_all(b"hello\n").expect("write");
        err_w.write_all(b"oops\n").expect("write");
        out_w.write_all(b"no newline").expect("write");
        // As the shim's binaryIO.Close: close the pipes, then SIGTERM.
        drop((out_w, err_w));
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: signals our own child, which has not been waited for yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = child.wait().expect("wait logger");
        assert!(status.success(), "{status}");

        let text = std::fs::read(&log).expect("read log");
        let got: Vec<(Stream, bool, Vec<u8>)> = text
            .split_inclusive(|&b| b == b'\n')
            .filter_map(parse_record)
            .map(|r| (r.stream, r.partial, r.content.to_vec()))
            .collect();
        let stdout: Vec<_> = got.iter().filter(|r| r.0 == Stream::Stdout).collect();
        let stderr: Vec<_> = got.iter().filter(|r| r.0 == Stream::Stderr).collect();
        assert_eq!(
            stdout,
            [
                &(Stream::Stdout, false, b"hello".to_vec()),
                &(Stream::Stdout, true, b"no newline".to_vec())
            ]
        );
        assert_eq!(stderr, [&(Stream::Stderr, false, b"oops".to_vec())]);
    }

    #[test]
    fn gives_up_on_open_streams_after_sigterm() {
        let (mut held_r, held_w) = pipe();
        let started = Instant::now();
        TERMINATED.store(true, Ordering::Relaxed);
        let result = drain(move || {
            let _ = io::copy(&mut held_r, &mut io::sink());
        });
        TERMINATED.store(false, Ordering::Relaxed);
        result.expect("drain");
        let took = started.elapsed();
        assert!(took >= TERM_GRACE && took < TERM_GRACE * 3, "{took:?}");
        drop(held_w);
    }

    #[test]
    fn refuses_fds_that_are_not_pipes() {
        let file = tempfile::tempfile().expect("tempfile");
        let err = take_pipe(file.as_raw_fd()).expect_err("a regular file");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Still ours: the failed check did not take it.
        assert!(file.metadata().is_ok());
    }

    #[test]
    fn arguments_are_exactly_the_path() {
        let err = run_logger_from_args(Vec::<OsString>::new()).expect_err("no path");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = run_logger_from_args(["/a", "/b"]).expect_err("two paths");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
