//! The only module that touches tokio-modbus: a client connection whose
//! every call is bounded by a timeout (a UPS card that stops answering
//! mid-request must not stall its poller forever), and, for the simulator,
//! a server that answers reads from a register image.

use super::decode::Block;
use super::map::Table;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_modbus::client::{Client as _, Context, Reader as _};
use tokio_modbus::{ExceptionCode, Request, Response, Slave, SlaveRequest};

/// Why a call failed. `Exception` means the device answered (it is up)
/// but refused this request; the others mean the connection is suspect.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("Modbus exception {code:#04x} ({name})")]
    Exception { code: u8, name: &'static str },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl CallError {
    /// The device answered; the connection can be kept.
    pub fn is_exception(&self) -> bool {
        matches!(self, CallError::Exception { .. })
    }
}

/// The standard exception names (Modbus application protocol 1.1b3, §7).
pub fn exception_name(code: u8) -> &'static str {
    match code {
        1 => "ILLEGAL FUNCTION",
        2 => "ILLEGAL DATA ADDRESS",
        3 => "ILLEGAL DATA VALUE",
        4 => "SERVER DEVICE FAILURE",
        5 => "ACKNOWLEDGE",
        6 => "SERVER DEVICE BUSY",
        8 => "MEMORY PARITY ERROR",
        0x0A => "GATEWAY PATH UNAVAILABLE",
        0x0B => "GATEWAY TARGET DEVICE FAILED TO RESPOND",
        _ => "non-standard",
    }
}

async fn bounded<T>(limit: Duration, f: impl Future<Output = T>) -> Result<T, CallError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| CallError::Timeout(limit))
}

/// One TCP connection to one Modbus unit.
pub struct Connection {
    ctx: Context,
    timeout: Duration,
}

impl Connection {
    /// Resolves `host:port` and connects, each step within `timeout`.
    pub async fn connect(address: &str, unit: u8, timeout: Duration) -> Result<Self, CallError> {
        let addr: SocketAddr = bounded(timeout, tokio::net::lookup_host(address))
            .await??
            .next()
            .ok_or_else(|| {
                CallError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("`{address}` resolves to no address"),
                ))
            })?;
        let ctx = bounded(
            timeout,
            tokio_modbus::client::tcp::connect_slave(addr, Slave(unit)),
        )
        .await??;
        Ok(Connection { ctx, timeout })
    }

    /// Reads `count` registers (or bits) of `table` from `start`.
    pub async fn read(&mut self, table: Table, start: u16, count: u16) -> Result<Block, CallError> {
        let ctx = &mut self.ctx;
        let result = bounded(self.timeout, async move {
            match table {
                Table::Holding => ctx
                    .read_holding_registers(start, count)
                    .await
                    .map(|r| r.map(Block::Words)),
                Table::Input => ctx
                    .read_input_registers(start, count)
                    .await
                    .map(|r| r.map(Block::Words)),
                Table::Coil => ctx
                    .read_coils(start, count)
                    .await
                    .map(|r| r.map(Block::Bits)),
                Table::Discrete => ctx
                    .read_discrete_inputs(start, count)
                    .await
                    .map(|r| r.map(Block::Bits)),
            }
        })
        .await?;
        match result {
            Ok(Ok(block)) => Ok(block),
            Ok(Err(code)) => {
                let code = u8::from(code);
                Err(CallError::Exception {
                    code,
                    name: exception_name(code),
                })
            }
            Err(tokio_modbus::Error::Transport(e)) => Err(CallError::Io(e)),
            Err(tokio_modbus::Error::Protocol(e)) => Err(CallError::Protocol(e.to_string())),
        }
    }

    /// Closes the connection politely, bounded like every other call.
    pub async fn close(mut self) {
        let limit = self.timeout;
        let _ = bounded(limit, self.ctx.disconnect()).await;
    }
}

/// What a server answers: a read of `count` items of `table` from `start`,
/// or an exception code. Implemented by the simulator's register image.
pub trait Registers: Send + Sync + 'static {
    fn read(&self, table: Table, start: u16, count: u16) -> Result<Block, u8>;
}

struct Service {
    unit: u8,
    registers: Arc<dyn Registers>,
}

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        // A TCP gateway ignores requests for units it does not front: the
        // client then times out, as with real hardware.
        if req.slave != self.unit && req.slave != 0 && req.slave != 0xFF {
            return std::future::ready(Ok(None));
        }
        let read = |table, start, count| {
            self.registers
                .read(table, start, count)
                .map_err(ExceptionCode::new)
        };
        let answer = match req.request {
            Request::ReadHoldingRegisters(a, n) => read(Table::Holding, a, n)
                .map(words)
                .map(Response::ReadHoldingRegisters),
            Request::ReadInputRegisters(a, n) => read(Table::Input, a, n)
                .map(words)
                .map(Response::ReadInputRegisters),
            Request::ReadCoils(a, n) => read(Table::Coil, a, n).map(bits).map(Response::ReadCoils),
            Request::ReadDiscreteInputs(a, n) => read(Table::Discrete, a, n)
                .map(bits)
                .map(Response::ReadDiscreteInputs),
            // A monitoring simulator is read-only.
            _ => Err(ExceptionCode::IllegalFunction),
        };
        std::future::ready(answer.map(Some))
    }
}

fn words(b: Block) -> Vec<u16> {
    match b {
        Block::Words(w) => w,
        Block::Bits(b) => b.into_iter().map(u16::from).collect(),
    }
}

fn bits(b: Block) -> Vec<bool> {
    match b {
        Block::Bits(b) => b,
        Block::Words(w) => w.into_iter().map(|v| v != 0).collect(),
    }
}

/// Serves `registers` as Modbus TCP unit `unit` on `listener` until the
/// returned future is dropped (dropping it also closes every client
/// connection, which is how a test "unplugs" the simulator).
pub async fn serve(
    listener: TcpListener,
    unit: u8,
    registers: Arc<dyn Registers>,
) -> io::Result<()> {
    let server = tokio_modbus::server::tcp::Server::new(listener);
    let on_connected = |stream, peer| {
        let registers = registers.clone();
        async move {
            tokio_modbus::server::tcp::accept_tcp_connection(stream, peer, |_| {
                Ok(Some(Service {
                    unit,
                    registers: registers.clone(),
                }))
            })
        }
    };
    let on_error = |e: io::Error| tracing::debug!("Modbus simulator connection ended: {e}");
    server.serve(&on_connected, on_error).await
}
