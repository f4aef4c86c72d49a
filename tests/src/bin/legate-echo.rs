//! `legate-echo --listen ADDR --name NAME`: the tests' echo upstream as a
//! program, for `make run` and for trying Legate by hand.

use std::net::SocketAddr;

use legate_tests::EchoServer;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut listen: Option<SocketAddr> = None;
    let mut name = "echo".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => match v.parse() {
                Ok(a) => listen = Some(a),
                Err(e) => return usage(&format!("--listen {v:?}: {e}")),
            },
            ("--name", Some(v)) => name = v,
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let Some(listen) = listen else {
        return usage("--listen is required");
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("legate-echo: binding {listen}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let server = EchoServer::serve(listener, &name);
    eprintln!("legate-echo: {name} answering on {}", server.addr());
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}

fn usage(problem: &str) -> std::process::ExitCode {
    eprintln!("legate-echo: {problem}\nusage: legate-echo --listen 127.0.0.1:PORT [--name NAME]");
    std::process::ExitCode::from(2)
}
