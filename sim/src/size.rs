//! Parsing of memory sizes such as `512M`, `2G` or `65536K`.

/// Parse a size with an optional binary suffix `K`, `M`, `G` or `T` (also
/// `KiB`...). The result is a positive multiple of 4 KiB.
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown size suffix `{suffix}` (use K, M, G or T)")),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 512M or 2G"))?;
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or("size too large")?;
    if bytes == 0 || bytes % 4096 != 0 {
        return Err(format!("`{text}` is not a positive multiple of 4 KiB"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn suffixes() {
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("2g"), Ok(2 << 30));
        assert_eq!(parse("64KiB"), Ok(64 << 10));
        assert_eq!(parse("8192"), Ok(8192));
    }

    #[test]
    fn errors() {
        assert!(parse("").is_err());
        assert!(parse("12Q").is_err());
        assert!(parse("0").is_err());
        assert!(parse("100").is_err());
        assert!(parse("99999999999T").is_err());
        assert!(parse("-1G").is_err());
    }
}
