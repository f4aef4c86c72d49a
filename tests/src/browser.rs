//! Debian's headless Chromium, driven through chromedriver's WebDriver HTTP
//! API: open a page, find elements, read their rectangles, take a
//! screenshot. `make test` installs both (scripts/install-chromium.sh);
//! when either is missing, starting fails with how to get it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde_json::{Value, json};

use crate::http::HttpClient;
use crate::net::{eventually, free_port, loopback};

/// Where Debian's `chromium` package puts the browser (LEGATE_CHROMIUM overrides).
const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts chromedriver (LEGATE_CHROMEDRIVER overrides).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// WebDriver's key for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The flags the browser needs on a machine with no display, no sandbox
/// privileges and no internet (without the networking ones it keeps
/// trying to reach Google's services and floods refused connections).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    // CSS pixels are screenshot pixels: element rectangles index the PNG.
    "--force-device-scale-factor=1",
    "--window-size=1280,1600",
];

/// An element's rectangle in CSS pixels, from the top left of the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// One headless Chromium session; the browser and its driver stop on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: HttpClient,
    profile: tempfile::TempDir,
}

fn path_of(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a fresh profile.
    pub async fn start() -> Result<Browser, String> {
        let chromium = path_of("LEGATE_CHROMIUM", CHROMIUM);
        let chromedriver = path_of("LEGATE_CHROMEDRIVER", CHROMEDRIVER);
        for (path, package) in [(&chromium, "chromium"), (&chromedriver, "chromium-driver")] {
            if !path.is_file() {
                return Err(format!(
                    "{} is missing: run `make chromium` (scripts/install-chromium.sh, which runs \
                     `apt-get install -y chromium chromium-driver` as root), or install Debian's \
                     {package} package yourself",
                    path.display()
                ));
            }
        }
        let profile = tempfile::Builder::new()
            .prefix("legate-chromium-")
            .tempdir()
            .map_err(|e| format!("a temp dir for the browser profile: {e}"))?;
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chromedriver.display()))?;
        let client = HttpClient::http1();
        let base = format!("http://{}", loopback(port));
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            client,
            profile,
        };
        let status = format!("{}/status", browser.base);
        eventually(
            "chromedriver to answer /status",
            Duration::from_secs(20),
            || async {
                let r = browser.client.get(&status, None).await.ok()?;
                let body: Value = serde_json::from_slice(&r.body).ok()?;
                (body["value"]["ready"] == true).then_some(())
            },
        )
        .await;
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.path().display()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
        }}});
        let created = browser.call(Method::POST, "/session", Some(capabilities)).await?;
        browser.session = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("chromedriver made no session: {created}"))?
            .to_string();
        Ok(browser)
    }

    /// One WebDriver command; its `value`, or the driver's error.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| format!("building {method} {url}: {e}"))?;
        let response = self.client.send(request).await?;
        let value: Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("{method} {path}: not JSON ({e}): {}", response.text()))?;
        if !response.status.is_success() {
            return Err(format!("{method} {path}: {} {}", response.status, value["value"]));
        }
        Ok(value["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn open(&self, url: &str) -> Result<(), String> {
        self.call(
            Method::POST,
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        )
        .await
        .map(|_| ())
    }

    /// The elements `selector` (CSS) finds, in document order.
    pub async fn find_all(&self, selector: &str) -> Result<Vec<String>, String> {
        let found = self
            .call(
                Method::POST,
                &self.session_path("/elements"),
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await?;
        let elements = found.as_array().cloned().unwrap_or_default();
        elements
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("not an element reference: {e}"))
            })
            .collect()
    }

    /// Whether the element is shown (WebDriver's "is displayed").
    pub async fn displayed(&self, element: &str) -> Result<bool, String> {
        let shown = self
            .call(
                Method::GET,
                &self.session_path(&format!("/element/{element}/displayed")),
                None,
            )
            .await?;
        shown
            .as_bool()
            .ok_or_else(|| format!("displayed is not a boolean: {shown}"))
    }

    pub async fn rect(&self, element: &str) -> Result<Rect, String> {
        let r = self
            .call(
                Method::GET,
                &self.session_path(&format!("/element/{element}/rect")),
                None,
            )
            .await?;
        let field = |name: &str| {
            r[name]
                .as_f64()
                .ok_or_else(|| format!("rect without {name}: {r}"))
        };
        Ok(Rect {
            x: field("x")?,
            y: field("y")?,
            width: field("width")?,
            height: field("height")?,
        })
    }

    /// The element's visible text.
    pub async fn text(&self, element: &str) -> Result<String, String> {
        let t = self
            .call(
                Method::GET,
                &self.session_path(&format!("/element/{element}/text")),
                None,
            )
            .await?;
        Ok(t.as_str().unwrap_or_default().to_string())
    }

    /// A PNG of the window as painted.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let encoded = self
            .call(Method::GET, &self.session_path("/screenshot"), None)
            .await?;
        let encoded = encoded
            .as_str()
            .ok_or_else(|| format!("the screenshot is not a string: {encoded}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the screenshot is not base64: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session stops the browser (killing the driver alone
        // would leave it running). Plain std, as drop may run outside a runtime.
        if !self.session.is_empty() {
            delete_blocking(&self.base, &self.session_path(""));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE path` on the driver at `base` (`http://host:port`), waiting for the answer.
fn delete_blocking(base: &str, path: &str) {
    use std::io::{Read, Write};
    let Some(address) = base.strip_prefix("http://").and_then(|a| a.parse().ok()) else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}
