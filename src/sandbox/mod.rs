//! TEMPORARY local stand-in for type-checking; never committed.
#![allow(dead_code, unused_variables)]
pub struct SandboxConfig {
    pub latency: std::time::Duration,
    pub fault_rate: f64,
    pub faults: Vec<Fault>,
    pub timeout_hang: std::time::Duration,
    pub data_file: Option<std::path::PathBuf>,
    pub seed: Option<u64>,
    pub heron_rate_limit: u32,
}
impl Default for SandboxConfig {
    fn default() -> Self {
        todo!()
    }
}
pub enum Fault {
    A,
}
impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        todo!()
    }
}
pub struct Sandbox;
#[derive(Debug)]
pub struct SandboxError;
impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}
impl Sandbox {
    pub async fn start(l: std::net::SocketAddr, c: SandboxConfig) -> Result<Sandbox, SandboxError> {
        todo!()
    }
    pub fn base_url(&self) -> String {
        todo!()
    }
    pub async fn shutdown(self) -> Result<(), SandboxError> {
        todo!()
    }
}
pub const HERON_API_KEY: &str = "sandbox-heron-key";
