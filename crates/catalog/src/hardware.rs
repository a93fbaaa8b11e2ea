//! What this computer has to train and run models with.

use serde::Serialize;
use sysinfo::{CpuRefreshKind, Gpus, MemoryRefreshKind, RefreshKind, System};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    /// The processor's marketing name, e.g. "Intel(R) Xeon(R) Platinum 8480+".
    pub cpu_model: String,
    /// `x86_64`, `aarch64`, ...
    pub cpu_arch: String,
    /// Threads the operating system can schedule on.
    pub logical_cores: usize,
    /// Physical cores, when the system says.
    pub physical_cores: Option<usize>,
    /// Vector instruction sets that speed up model maths (AVX2, AVX-512, NEON...).
    pub cpu_features: Vec<String>,
    pub total_memory_bytes: u64,
    pub available_memory_bytes: u64,
    /// E.g. "Linux 12 (Debian GNU/Linux)".
    pub os: Option<String>,
    pub gpus: Vec<Gpu>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// Dedicated memory, when the driver reports it.
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    #[error("Could not read this computer's processor and memory details: {0}")]
    System(String),
}

/// Reads the processor, memory and graphics cards. Takes a few milliseconds
/// (no usage sampling).
pub fn probe() -> Result<Hardware, HardwareError> {
    let refresh = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing().with_frequency())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let sys =
        System::new_with_specifics(refresh).map_err(|e| HardwareError::System(e.to_string()))?;

    let cpus = sys.cpus();
    let cpu_model = cpus
        .iter()
        .map(|c| c.brand().trim())
        .find(|b| !b.is_empty())
        .unwrap_or("Unknown processor")
        .to_owned();
    let logical_cores = if cpus.is_empty() {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cpus.len()
    };

    // A machine without a usable GPU driver is normal, not an error.
    let gpus = Gpus::new_with_refreshed_list()
        .map(|gpus| {
            gpus.iter()
                .map(|g| Gpu {
                    vendor: g.vendor().map(str::to_owned),
                    model: g.model().map(str::to_owned),
                    memory_bytes: g.total_memory().filter(|&m| m > 0),
                })
                .collect()
        })
        .unwrap_or_default();

    Ok(Hardware {
        cpu_model,
        cpu_arch: System::cpu_arch(),
        logical_cores,
        physical_cores: System::physical_core_count().ok(),
        cpu_features: cpu_features(),
        total_memory_bytes: sys.total_memory(),
        available_memory_bytes: sys.available_memory(),
        os: System::long_os_version().ok(),
        gpus,
    })
}

fn cpu_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut out: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            out.push("AVX2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            out.push("FMA");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            out.push("AVX-512");
        }
        if std::arch::is_x86_feature_detected!("avx512vnni") {
            out.push("AVX-512 VNNI");
        }
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            out.push("AVX-512 BF16");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            out.push("NEON");
        }
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            out.push("DotProd");
        }
    }
    out.into_iter().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_this_machine() {
        let hw = probe().unwrap();
        let expected = std::thread::available_parallelism().unwrap().get();
        // sysinfo counts online CPUs, available_parallelism honours affinity/cgroups.
        assert!(
            hw.logical_cores >= expected,
            "{} < {expected}",
            hw.logical_cores
        );
        assert!(hw.total_memory_bytes > 256 * 1024 * 1024);
        assert!(hw.available_memory_bytes <= hw.total_memory_bytes);
        assert!(!hw.cpu_model.is_empty());
        assert!(!hw.cpu_arch.is_empty());
        if let Some(p) = hw.physical_cores {
            assert!(p >= 1 && p <= hw.logical_cores);
        }
    }

    #[test]
    fn serializes_in_camel_case_for_the_ui() {
        let hw = probe().unwrap();
        let json = serde_json::to_value(&hw).unwrap();
        assert!(json["logicalCores"].as_u64().unwrap() >= 1);
        assert!(json["totalMemoryBytes"].as_u64().unwrap() > 0);
        assert!(json["gpus"].is_array());
    }
}
