//! The PROXY v1/v2 header: never a panic, and never a byte read past the
//! header's end (what follows belongs to HTTP).
#![no_main]

use std::sync::OnceLock;

use hookgate::internals::read_proxy_header;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let result = runtime().block_on(read_proxy_header(&mut rest));
    if result.is_ok() {
        let used = &data[..data.len() - rest.len()];
        let v1 = used.starts_with(b"PROXY ") && used.ends_with(b"\r\n") && used.len() <= 107;
        let v2 = used.len() >= 16 && used.len() == 16 + usize::from(u16::from_be_bytes([used[14], used[15]]));
        assert!(v1 || v2, "read {} bytes that are not one header", used.len());
    }
});
