//! The chunked decoder: never a panic, never consumes more than it is given,
//! and the same body whether the bytes come in one piece or two.
#![no_main]

use hookgate::internals::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

/// Decodes `input` fed in the given pieces: (body, done, consumed) or an error.
fn decode(input: &[u8], cut: usize) -> Result<(Vec<u8>, bool, usize), ()> {
    let mut decoder = ChunkedDecoder::new(1024);
    let mut body = Vec::new();
    let mut consumed = 0;
    for piece in [&input[..cut], &input[cut..]] {
        if decoder.is_done() {
            break;
        }
        let used = decoder.decode(piece, &mut body).map_err(|_| ())?;
        assert!(used <= piece.len());
        consumed += used;
        if used < piece.len() {
            assert!(decoder.is_done(), "input left over only after the last chunk");
            break;
        }
    }
    Ok((body, decoder.is_done(), consumed))
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let cut = if input.is_empty() { 0 } else { usize::from(split) % (input.len() + 1) };
    let whole = decode(input, input.len());
    let pieces = decode(input, cut);
    assert_eq!(whole, pieces, "cut at {cut}");
    if let Ok((body, _, consumed)) = whole {
        assert!(body.len() <= consumed);
    }
});
