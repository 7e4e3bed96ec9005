//! The harness floor: the smallest process that does what a Lambda runtime
//! does before its first invocation (connect to AWS_LAMBDA_RUNTIME_API and ask
//! for the next event). Its "cold init" is the harness overhead (Python's
//! spawn, exec, the loopback round trip, the HTTP server's parsing); a
//! function's figure minus this floor is the function's own init.
//! Built by run.sh with plain `rustc -O`, no dependencies.
use std::io::{Read, Write};
use std::net::TcpStream;

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let mut stream = TcpStream::connect(&api).expect("connect to the runtime API");
    let request =
        format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    // Wait like a runtime does; the harness kills the process.
    let mut buffer = [0u8; 1];
    let _ = stream.read(&mut buffer);
}
