//! A TCP relay between a client and a broker that slows, swallows or cuts
//! the traffic on command.

use std::time::Duration;

/// What a [`FaultProxy`] does with the bytes it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relay everything.
    None,
    /// Hold every byte from now on: connections stay open, nothing moves.
    BlackHole,
    /// Relay, but wait this long before each chunk.
    Delay(Duration),
    /// Relay this many more client-to-broker bytes, then close every
    /// connection and refuse new ones: the broker is gone.
    CutAfter(usize),
    /// Relay about this many more client-to-broker bytes (whole reads),
    /// then hold everything, as [`Fault::BlackHole`] does.
    StallAfter(usize),
}

/// A TCP relay between the producer and a broker that can slow down,
/// swallow or cut the traffic on command.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    /// The port the proxy listens on.
    pub port: u16,
}

#[derive(Debug)]
struct ProxyState {
    fault: Fault,
    budget: usize,
    generation: u64,
}

impl FaultProxy {
    /// Listens on `port` and relays to `upstream`.
    #[allow(clippy::panic)]
    pub async fn start(port: u16, upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot bind proxy port {port}: {e}"));
        let proxy = Self {
            state: std::sync::Arc::new(std::sync::Mutex::new(ProxyState {
                fault: Fault::None,
                budget: 0,
                generation: 0,
            })),
            port,
        };
        let state = std::sync::Arc::clone(&proxy.state);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let refuse = state
                    .lock()
                    .map(|s| matches!(s.fault, Fault::CutAfter(_)) && s.budget == 0)
                    .unwrap_or(true);
                if refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(relay(
                    client_read,
                    server_write,
                    std::sync::Arc::clone(&state),
                    true,
                ));
                tokio::spawn(relay(
                    server_read,
                    client_write,
                    std::sync::Arc::clone(&state),
                    false,
                ));
            }
        });
        proxy
    }

    /// Changes what the proxy does from now on.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut s) = self.state.lock() {
            s.fault = fault;
            s.generation += 1;
            if let Fault::CutAfter(n) | Fault::StallAfter(n) = fault {
                s.budget = n;
            }
        }
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    client_to_broker: bool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let mut allowed = n;
        loop {
            let fault = match state.lock() {
                Ok(s) => s.fault,
                Err(_) => return,
            };
            match fault {
                Fault::None => break,
                Fault::BlackHole => tokio::time::sleep(Duration::from_millis(20)).await,
                Fault::Delay(d) => {
                    tokio::time::sleep(d).await;
                    break;
                }
                Fault::StallAfter(_) => {
                    let stalled = {
                        let Ok(mut s) = state.lock() else { return };
                        if s.budget > 0 && client_to_broker {
                            // The chunk goes through whole; the stall starts after it.
                            s.budget = s.budget.saturating_sub(n);
                            false
                        } else {
                            s.budget == 0
                        }
                    };
                    if !stalled {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Fault::CutAfter(_) => {
                    let Ok(mut s) = state.lock() else { return };
                    if !client_to_broker {
                        if s.budget == 0 {
                            return;
                        }
                        break;
                    }
                    if s.budget == 0 {
                        return;
                    }
                    allowed = allowed.min(s.budget);
                    s.budget -= allowed;
                    break;
                }
            }
        }
        if to.write_all(&buffer[..allowed]).await.is_err() {
            return;
        }
        if allowed < n {
            return;
        }
    }
}
