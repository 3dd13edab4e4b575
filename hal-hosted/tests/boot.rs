//! Booting the real kernel on the hosted HAL: `hal_hosted::boot` returns the
//! kernel's exit status after every CPU thread has ended.

use hal_hosted::{Config, boot};

#[test]
fn boot_two_cpus_succeeds() {
    let config = Config {
        cpus: 2,
        ..Config::default()
    };
    assert_eq!(boot(&config, ""), Ok(kernel_core::exit::SUCCESS));
}

#[test]
fn boot_refuses_a_bad_config() {
    let config = Config {
        cpus: 0,
        ..Config::default()
    };
    assert_eq!(boot(&config, ""), Err(hal_hosted::HostError::NoCpus));
}
