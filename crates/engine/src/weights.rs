//! Reading weights by their Hugging Face names, from a GGUF file or a folder of
//! safetensors, into the layer types the model files use.
//!
//! Inside the engine every weight is in Hugging Face layout and naming, whatever the
//! file: GGUF names are mapped, and llama.cpp's row permutation of the query and key
//! projections of `llama` GGUFs is undone at load. So the model code has one layout,
//! uses one rotary embedding (rotate-half), and adapters we train are PEFT's layout.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::config::Arch;
use crate::error::{EngineError, Result};

/// A linear layer `y = x W^T + b (+ LoRA update)`, with W quantized or in f32.
#[derive(Debug, Clone)]
pub struct Linear {
    /// The Hugging Face name of the layer, e.g. `model.layers.3.self_attn.q_proj`
    /// (adapters are saved and matched by it).
    pub name: String,
    pub base: LinearBase,
    pub bias: Option<Tensor>,
    pub in_dim: usize,
    pub out_dim: usize,
    /// A LoRA adapter added to the frozen base (trained, or loaded for chat).
    pub adapter: Option<qlora::LoraAdapter>,
}

/// How the frozen weight W is multiplied.
#[derive(Debug, Clone)]
pub enum LinearBase {
    /// candle's quantized kernels: fast, but no gradient reaches the input.
    ///
    /// `pad` zero columns may follow W's `in_dim` real ones (and zeros are appended
    /// to `x` to match): candle's repacked x86 kernel, chosen when the inner size is
    /// a multiple of 256, quantizes activations with one scale per 256 values,
    /// which measurably loses precision on models with outlier activations
    /// (SmolLM2); with a padded size, Q8_0 weights meet per-32 activation scales,
    /// as in llama.cpp.
    Fast { weight: QMatMul, pad: usize },
    /// Tile-by-tile dequantization and f32 matmul, with a backward pass to the
    /// input: what training needs (see the qlora crate).
    Frozen(qlora::FrozenLinear),
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, None)
    }

    /// The forward pass; in training, `dropout_seed` seeds the adapter's dropout
    /// (mixed with the layer's name so that every layer draws its own mask).
    pub fn forward_t(&self, x: &Tensor, dropout_seed: Option<u64>) -> candle_core::Result<Tensor> {
        // Training on the CPU without dropout: base and adapter in one fused op.
        if let (LinearBase::Frozen(f), Some(a)) = (&self.base, &self.adapter) {
            if (a.dropout() == 0.0 || dropout_seed.is_none()) && qlora::fused::supported(x) {
                let y = f.forward_with_lora(x, a).map_err(candle_core::Error::wrap)?;
                return match &self.bias {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                };
            }
        }
        let y = match &self.base {
            LinearBase::Fast { weight, pad: 0 } => weight.forward(x)?,
            LinearBase::Fast { weight, pad } => weight.forward(&x.pad_with_zeros(candle_core::D::Minus1, 0, *pad)?)?,
            LinearBase::Frozen(f) => f.forward(x).map_err(candle_core::Error::wrap)?,
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        match &self.adapter {
            Some(a) => {
                let seed = dropout_seed.map(|s| s ^ name_hash(&self.name));
                let delta = a.delta(x, seed).map_err(candle_core::Error::wrap)?.to_dtype(y.dtype())?;
                y + delta
            }
            None => Ok(y),
        }
    }

    /// `W` as f32 `[out, in]` (for merging an adapter and for exports).
    pub fn dense_weight(&self) -> candle_core::Result<Tensor> {
        match &self.base {
            LinearBase::Fast { weight, pad } => {
                let w = match weight {
                    QMatMul::QTensor(q) => q.dequantize(&Device::Cpu)?,
                    QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
                };
                w.narrow(1, 0, w.dim(1)? - pad)
            }
            LinearBase::Frozen(f) => f.weight().rows(0..self.out_dim).map_err(candle_core::Error::wrap),
        }
    }
}

/// FNV-1a of a layer name: a stable per-layer salt for dropout seeds.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A token embedding table, kept quantized when the file is (rows are dequantized
/// on lookup).
#[derive(Debug, Clone)]
pub enum Embedding {
    Quantized(Arc<QTensor>),
    Dense(Tensor),
}

impl Embedding {
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Embedding::Quantized(q) => q.embedding(ids),
            Embedding::Dense(t) => {
                let mut dims = ids.dims().to_vec();
                dims.push(t.dim(1)?);
                t.index_select(&ids.flatten_all()?, 0)?.reshape(dims)
            }
        }
    }
}

/// Quantized types used as stored: those with fast CPU kernels here. Others are
/// rewritten as Q8_0 (exactly for Q4_0/Q5_0; Q4_1/Q5_1 by requantizing, whose
/// scalar kernels are slower: 7.3 vs 17.8 generated tok/s on SmolLM2, 1 thread).
fn keep_as_stored(dt: GgmlDType) -> bool {
    matches!(dt, GgmlDType::Q8_0 | GgmlDType::Q2K | GgmlDType::Q3K | GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K)
}

fn is_float(dt: GgmlDType) -> bool {
    matches!(dt, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
}

enum Store {
    Gguf { content: gguf_file::Content, reader: BufReader<File> },
    Safetensors { files: Vec<StFile>, index: HashMap<String, usize> },
}

/// One safetensors file: its mapping and its header, parsed (and validated) once.
struct StFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
    data_start: usize,
    header: safetensors::tensor::Metadata,
}

/// How weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightMode {
    /// Quantized as in the file, slow CPU kernels (Q4_0, Q4_1, Q5_x) requantized to Q8_0.
    #[default]
    Fast,
    /// Exactly the file's quantization (slow for Q4_0/Q4_1/Q5_x on the CPU).
    AsStored,
    /// Every weight dequantized to f32: exact reference arithmetic, 4-8x the memory.
    F32,
    /// For training: linear layers frozen in the given storage, with a backward
    /// pass to their input (see [`LinearBase::Frozen`]).
    Frozen(BaseQuant),
}

/// How a frozen base is stored while adapters train on top of it (`--quant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseQuant {
    /// 4-bit NormalFloat with double-quantized block scales (QLoRA).
    #[default]
    Nf4,
    /// 8-bit (GGUF's Q8_0, blocks of 32 with an f16 scale).
    Q8,
    /// The model file's own quantization, unchanged.
    Gguf,
    /// Full precision (f32): the exact reference, 8x NF4's memory.
    None,
}

impl BaseQuant {
    pub fn parse(s: &str) -> Option<BaseQuant> {
        match s {
            "nf4" => Some(BaseQuant::Nf4),
            "q8" => Some(BaseQuant::Q8),
            "gguf" => Some(BaseQuant::Gguf),
            "none" | "f32" => Some(BaseQuant::None),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BaseQuant::Nf4 => "nf4",
            BaseQuant::Q8 => "q8",
            BaseQuant::Gguf => "gguf",
            BaseQuant::None => "none",
        }
    }
}

pub struct Weights {
    path: PathBuf,
    mode: WeightMode,
    arch: Arch,
    heads: usize,
    kv_heads: usize,
    device: Device,
    store: Store,
}

impl Weights {
    /// Opens a GGUF file whose header was already read, checking that every tensor
    /// lies inside the file (a truncated download is caught here, not mid-load).
    pub fn from_gguf(path: &Path, content: gguf_file::Content, heads: usize, kv_heads: usize, arch: Arch, mode: WeightMode, device: &Device) -> Result<Weights> {
        let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
        let len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
        for (name, info) in &content.tensor_infos {
            let elems = info.shape.elem_count();
            let bs = info.ggml_dtype.block_size();
            if elems % bs != 0 {
                return Err(EngineError::Corrupt {
                    path: path.to_path_buf(),
                    why: format!("tensor `{name}` has {elems} values, not a whole number of {:?} blocks", info.ggml_dtype),
                });
            }
            let end = content.tensor_data_offset.saturating_add(info.offset).saturating_add((elems / bs * info.ggml_dtype.type_size()) as u64);
            if end > len {
                return Err(EngineError::Corrupt {
                    path: path.to_path_buf(),
                    why: format!("it is {len} bytes long but tensor `{name}` ends at byte {end} (the file is truncated)"),
                });
            }
        }
        Ok(Weights { path: path.to_path_buf(), mode, arch, heads, kv_heads, device: device.clone(), store: Store::Gguf { content, reader: BufReader::new(file) } })
    }

    /// Opens every `*.safetensors` file of a folder (single or sharded) and indexes
    /// the tensor names. Header offsets are validated by the safetensors crate.
    pub fn from_safetensors_dir(dir: &Path, heads: usize, kv_heads: usize, arch: Arch, mode: WeightMode, device: &Device) -> Result<Weights> {
        let mode = match mode {
            WeightMode::Frozen(q) => WeightMode::Frozen(q),
            _ => WeightMode::F32,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| EngineError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        paths.sort();
        let index_path = dir.join("model.safetensors.index.json");
        if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| EngineError::io(&index_path, e))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| EngineError::Corrupt { path: index_path.clone(), why: format!("not valid JSON: {e}") })?;
            if let Some(map) = json.get("weight_map").and_then(|m| m.as_object()) {
                for shard in map.values().filter_map(|v| v.as_str()) {
                    if !dir.join(shard).is_file() {
                        return Err(EngineError::Corrupt {
                            path: dir.to_path_buf(),
                            why: format!("shard `{shard}` listed in model.safetensors.index.json is missing"),
                        });
                    }
                }
            }
        }
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for p in &paths {
            let f = File::open(p).map_err(|e| EngineError::io(p, e))?;
            // SAFETY: the file is opened read-only; a concurrent writer would be the
            // user's own doing and could at worst produce wrong numbers.
            let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| EngineError::io(p, e))?;
            let corrupt = |e: safetensors::SafeTensorError| EngineError::Corrupt { path: p.clone(), why: format!("bad safetensors file: {e}") };
            // `deserialize` checks every offset against the file; keep its parsed header.
            safetensors::SafeTensors::deserialize(&mmap).map_err(corrupt)?;
            let (header_len, header) = safetensors::SafeTensors::read_metadata(&mmap).map_err(corrupt)?;
            for name in header.tensors().keys() {
                index.insert(name.clone(), files.len());
            }
            files.push(StFile { path: p.clone(), mmap, data_start: 8 + header_len, header });
        }
        Ok(Weights { path: dir.to_path_buf(), mode, arch, heads, kv_heads, device: device.clone(), store: Store::Safetensors { files, index } })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn has(&self, hf_name: &str) -> bool {
        match &self.store {
            Store::Gguf { content, .. } => content.tensor_infos.contains_key(&gguf_name(self.arch, hf_name)),
            Store::Safetensors { index, .. } => index.contains_key(hf_name),
        }
    }

    fn missing(&self, name: &str) -> EngineError {
        EngineError::MissingTensor { path: self.path.clone(), name: name.to_string() }
    }

    /// The raw tensor as stored in a GGUF file.
    fn gguf_qtensor(&mut self, hf_name: &str) -> Result<QTensor> {
        let name = gguf_name(self.arch, hf_name);
        let path = self.path.clone();
        let Store::Gguf { content, reader } = &mut self.store else { unreachable!("called on GGUF stores only") };
        if !content.tensor_infos.contains_key(&name) {
            return Err(EngineError::MissingTensor { path, name: format!("{name} ({hf_name})") });
        }
        content.tensor(reader, &name, &Device::Cpu).map_err(|e| EngineError::Corrupt { path, why: format!("tensor `{name}`: {}", crate::error::first_line(&e)) })
    }

    /// A tensor from a safetensors folder, as f32.
    fn st_tensor(&self, hf_name: &str) -> Result<Tensor> {
        let Store::Safetensors { files, index } = &self.store else { unreachable!("called on safetensors stores only") };
        let f = &files[*index.get(hf_name).ok_or_else(|| self.missing(hf_name))?];
        let info = f.header.info(hf_name).ok_or_else(|| self.missing(hf_name))?;
        let (start, end) = info.data_offsets;
        let data = &f.mmap[f.data_start + start..f.data_start + end];
        let shape = info.shape.as_slice();
        let t = match info.dtype {
            safetensors::Dtype::F32 => Tensor::from_raw_buffer(data, DType::F32, shape, &Device::Cpu)?,
            safetensors::Dtype::F16 => Tensor::from_raw_buffer(data, DType::F16, shape, &Device::Cpu)?.to_dtype(DType::F32)?,
            safetensors::Dtype::BF16 => Tensor::from_raw_buffer(data, DType::BF16, shape, &Device::Cpu)?.to_dtype(DType::F32)?,
            other => {
                return Err(EngineError::Corrupt {
                    path: f.path.clone(),
                    why: format!("tensor `{hf_name}` has type {other:?}; expected f32, f16 or bf16"),
                })
            }
        };
        Ok(t)
    }

    /// A small tensor (norm weight, bias) as f32 on the model's device.
    pub fn vector(&mut self, hf_name: &str) -> Result<Tensor> {
        let t = match &self.store {
            Store::Gguf { .. } => self.gguf_qtensor(hf_name)?.dequantize(&Device::Cpu)?,
            Store::Safetensors { .. } => self.st_tensor(hf_name)?,
        };
        Ok(t.to_device(&self.device)?)
    }

    /// An RMSNorm multiplier. Gemma's norms compute `x * (1 + w)`: llama.cpp's
    /// converter stores `1 + w` in GGUF, Hugging Face stores `w`; we return `1 + w`.
    pub fn norm(&mut self, hf_name: &str) -> Result<Tensor> {
        let w = self.vector(hf_name)?;
        match (&self.store, self.arch) {
            (Store::Safetensors { .. }, Arch::Gemma3) => Ok((w + 1.0)?),
            _ => Ok(w),
        }
    }

    /// The linear layer `prefix.weight` (+ `prefix.bias` when `bias`).
    pub fn linear(&mut self, prefix: &str, bias: bool) -> Result<Linear> {
        let wname = format!("{prefix}.weight");
        let base = match &self.store {
            Store::Gguf { .. } => {
                let mut q = self.gguf_qtensor(&wname)?;
                if self.arch == Arch::Llama {
                    if prefix.ends_with("self_attn.q_proj") {
                        q = unpermute_rows(&q, self.heads)?;
                    } else if prefix.ends_with("self_attn.k_proj") {
                        q = unpermute_rows(&q, self.kv_heads)?;
                    }
                }
                self.base_from_gguf(q, &wname)?
            }
            Store::Safetensors { .. } => {
                let t = self.st_tensor(&wname)?;
                self.base_from_f32(t, &wname)?
            }
        };
        let bias = if bias { Some(self.vector(&format!("{prefix}.bias"))?) } else { None };
        make_linear(prefix, base, bias)
    }

    /// The output projection: `lm_head`, or the token embedding when the two are tied.
    pub fn output_head(&mut self) -> Result<Linear> {
        if self.has("lm_head.weight") {
            return self.linear("lm_head", false);
        }
        let embed = "model.embed_tokens.weight";
        let base = match &self.store {
            Store::Gguf { .. } => {
                let q = self.gguf_qtensor(embed)?;
                self.base_from_gguf(q, embed)?
            }
            Store::Safetensors { .. } => {
                let t = self.st_tensor(embed)?;
                self.base_from_f32(t, embed)?
            }
        };
        make_linear("lm_head", base, None)
    }

    fn base_from_gguf(&self, q: QTensor, name: &str) -> Result<LinearBase> {
        match self.mode {
            WeightMode::Frozen(quant) => self.frozen(Frozen::Gguf(q), quant, name),
            _ => {
                let (weight, pad) = self.to_matmul(q)?;
                Ok(LinearBase::Fast { weight, pad })
            }
        }
    }

    fn base_from_f32(&self, t: Tensor, name: &str) -> Result<LinearBase> {
        match self.mode {
            WeightMode::Frozen(quant) => self.frozen(Frozen::F32(t), quant, name),
            _ => Ok(LinearBase::Fast { weight: QMatMul::Tensor(t.to_device(&self.device)?), pad: 0 }),
        }
    }

    /// A frozen base in the storage `quant` asks for (see [`BaseQuant`]).
    fn frozen(&self, w: Frozen, quant: BaseQuant, name: &str) -> Result<LinearBase> {
        use qlora::FrozenWeight;
        let f32_of = |w: &Frozen| -> Result<Tensor> {
            Ok(match w {
                Frozen::Gguf(q) => q.dequantize(&Device::Cpu)?,
                Frozen::F32(t) => t.to_device(&Device::Cpu)?,
            })
        };
        let weight = match (quant, w) {
            (BaseQuant::Gguf, Frozen::F32(_)) => {
                return Err(EngineError::Unsupported(
                    "--quant gguf keeps a GGUF file's own quantization, but this model is a folder of unquantized safetensors; \
                     choose --quant nf4 (4-bit), q8 or none"
                        .into(),
                ))
            }
            (BaseQuant::Gguf, Frozen::Gguf(q)) if !is_float(q.dtype()) => FrozenWeight::Quantized(Arc::new(q)),
            (BaseQuant::Q8, Frozen::Gguf(q)) if q.dtype() == GgmlDType::Q8_0 => FrozenWeight::Quantized(Arc::new(q)),
            (quant, w) => {
                let t = f32_of(&w)?;
                match quant {
                    BaseQuant::None | BaseQuant::Gguf => FrozenWeight::Dense(t),
                    BaseQuant::Q8 if t.dim(1)? % 32 != 0 => {
                        return Err(EngineError::Unsupported(format!(
                            "8-bit storage needs rows that are a multiple of 32 values, and `{name}` has {}; train with --quant nf4 or none",
                            t.dim(1)?
                        )))
                    }
                    BaseQuant::Q8 => FrozenWeight::Quantized(Arc::new(QTensor::quantize(&t, GgmlDType::Q8_0)?)),
                    BaseQuant::Nf4 => FrozenWeight::Nf4(qlora::Nf4Tensor::quantize(&t).map_err(|e| EngineError::Other(format!("`{name}`: {e}")))?),
                }
            }
        };
        let f = qlora::FrozenLinear::new(weight, None).map_err(|e| EngineError::Other(format!("`{name}`: {e}")))?;
        Ok(LinearBase::Frozen(f))
    }

    pub fn embedding(&mut self, hf_name: &str) -> Result<Embedding> {
        match &self.store {
            Store::Gguf { .. } => {
                let q = self.gguf_qtensor(hf_name)?;
                if is_float(q.dtype()) || matches!(self.mode, WeightMode::F32 | WeightMode::Frozen(BaseQuant::None)) {
                    Ok(Embedding::Dense(q.dequantize(&self.device)?))
                } else {
                    Ok(Embedding::Quantized(Arc::new(q)))
                }
            }
            Store::Safetensors { .. } => Ok(Embedding::Dense(self.st_tensor(hf_name)?.to_device(&self.device)?)),
        }
    }

    /// Chooses how a GGUF weight is multiplied: see `keep_as_stored`; Q4_0/Q5_0
    /// rewritten exactly as Q8_0 (fast kernels, same numbers); anything else
    /// requantized to Q8_0; float weights as f32. Q8_0 weights whose inner size is
    /// a multiple of 256 get 32 zero columns (see `Linear`).
    fn to_matmul(&self, q: QTensor) -> Result<(QMatMul, usize)> {
        let dt = q.dtype();
        if is_float(dt) || self.mode == WeightMode::F32 {
            return Ok((QMatMul::Tensor(q.dequantize(&self.device)?), 0));
        }
        let q = if keep_as_stored(dt) || self.mode == WeightMode::AsStored {
            q
        } else if let Some(q8) = exact_q8_0(&q)? {
            q8
        } else {
            QTensor::quantize(&q.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        };
        let (q, pad) = if self.device.is_cpu() && q.dtype() == GgmlDType::Q8_0 && q.shape().dims2()?.1 % 256 == 0 {
            (pad_q8_0(&q)?, 32)
        } else {
            (q, 0)
        };
        let q = if self.device.is_cpu() { q } else { QTensor::quantize_onto(&q.dequantize(&Device::Cpu)?, q.dtype(), &self.device)? };
        Ok((QMatMul::from_arc(Arc::new(q))?, pad))
    }
}

/// A weight on its way to a frozen base.
enum Frozen {
    Gguf(QTensor),
    F32(Tensor),
}

/// A `Linear` named `name` around a base (a fast base's last `pad` columns are padding).
fn make_linear(name: &str, base: LinearBase, bias: Option<Tensor>) -> Result<Linear> {
    let (out_dim, in_dim) = match &base {
        LinearBase::Fast { weight, pad } => {
            let (o, i) = match weight {
                QMatMul::QTensor(q) => q.shape().dims2()?,
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dims2()?,
            };
            (o, i - pad)
        }
        LinearBase::Frozen(f) => (f.out_dim(), f.in_dim()),
    };
    Ok(Linear { name: name.to_string(), base, bias, in_dim, out_dim, adapter: None })
}

/// Appends one all-zero Q8_0 block (32 zero columns) to every row (see `Linear`).
fn pad_q8_0(q: &QTensor) -> Result<QTensor> {
    let (rows, cols) = q.shape().dims2()?;
    let row_bytes = cols / 32 * 34;
    let data = q.data()?;
    let mut out = Vec::with_capacity(rows * (row_bytes + 34));
    for row in data.chunks_exact(row_bytes) {
        out.extend_from_slice(row);
        out.extend_from_slice(&[0u8; 34]);
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), &Device::Cpu, GgmlDType::Q8_0)?;
    Ok(QTensor::new(storage, (rows, cols + 32))?)
}

/// Rewrites Q4_0/Q5_0 without loss: their blocks of 32 are `d * (q - 8|16)` with an
/// f16 scale `d`, which a Q8_0 block holds exactly with the same scale. Returns
/// `None` for other types.
fn exact_q8_0(q: &QTensor) -> Result<Option<QTensor>> {
    let (rows, cols) = q.shape().dims2()?;
    let (block_bytes, five_bit) = match q.dtype() {
        GgmlDType::Q4_0 => (18, false),
        GgmlDType::Q5_0 => (22, true),
        _ => return Ok(None),
    };
    let data = q.data()?;
    let mut out = Vec::with_capacity(rows * cols / 32 * 34);
    for blk in data.chunks_exact(block_bytes) {
        let (qh, qs) = if five_bit {
            (u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]), &blk[6..22])
        } else {
            (0, &blk[2..18])
        };
        let offset = if five_bit { 16 } else { 8 };
        let mut vals = [0u8; 32];
        for j in 0..16 {
            let (mut lo, mut hi) = ((qs[j] & 0x0f) as i32, (qs[j] >> 4) as i32);
            if five_bit {
                lo |= (((qh >> j) << 4) & 0x10) as i32;
                hi |= ((qh >> (j + 12)) & 0x10) as i32;
            }
            vals[j] = (lo - offset) as i8 as u8;
            vals[j + 16] = (hi - offset) as i8 as u8;
        }
        out.extend_from_slice(&blk[0..2]); // the f16 scale, unchanged
        out.extend_from_slice(&vals);
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), &Device::Cpu, GgmlDType::Q8_0)?;
    Ok(Some(QTensor::new(storage, (rows, cols))?))
}

/// Undoes llama.cpp's permutation of the q/k projection rows for `llama` GGUFs.
/// The converter maps Hugging Face row `h*d + i*d/2 + j` to row `h*d + 2j + i`
/// (head `h`, half `i`, pair `j`, head size `d`). Rows are independent runs of
/// quantized blocks, so they move without requantizing.
fn unpermute_rows(q: &QTensor, heads: usize) -> Result<QTensor> {
    let (rows, cols) = q.shape().dims2()?;
    let dt = q.dtype();
    let row_bytes = cols / dt.block_size() * dt.type_size();
    let d = rows / heads;
    let data = q.data()?;
    let mut out = vec![0u8; data.len()];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..d / 2 {
                let hf = h * d + i * (d / 2) + j;
                let gg = h * d + 2 * j + i;
                out[hf * row_bytes..(hf + 1) * row_bytes].copy_from_slice(&data[gg * row_bytes..(gg + 1) * row_bytes]);
            }
        }
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), &Device::Cpu, dt)?;
    Ok(QTensor::new(storage, (rows, cols))?)
}

/// The GGUF name of a Hugging Face tensor name.
pub fn gguf_name(arch: Arch, hf: &str) -> String {
    match hf {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let Some(rest) = hf.strip_prefix("model.layers.") else { return hf.to_string() };
    let Some((layer, tail)) = rest.split_once('.') else { return hf.to_string() };
    let (module, suffix) = match tail.rsplit_once('.') {
        Some(x) => x,
        None => return hf.to_string(),
    };
    let g = match (module, arch) {
        ("input_layernorm", _) => "attn_norm",
        ("self_attn.q_proj", _) => "attn_q",
        ("self_attn.k_proj", _) => "attn_k",
        ("self_attn.v_proj", _) => "attn_v",
        ("self_attn.o_proj", _) => "attn_output",
        ("self_attn.q_norm", _) => "attn_q_norm",
        ("self_attn.k_norm", _) => "attn_k_norm",
        ("post_attention_layernorm", Arch::Gemma3) => "post_attention_norm",
        ("post_attention_layernorm", _) => "ffn_norm",
        ("pre_feedforward_layernorm", _) => "ffn_norm",
        ("post_feedforward_layernorm", _) => "post_ffw_norm",
        ("mlp.gate_proj", _) => "ffn_gate",
        ("mlp.up_proj", _) => "ffn_up",
        ("mlp.down_proj", _) => "ffn_down",
        _ => return hf.to_string(),
    };
    format!("blk.{layer}.{g}.{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_per_architecture() {
        assert_eq!(gguf_name(Arch::Llama, "model.layers.3.self_attn.q_proj.weight"), "blk.3.attn_q.weight");
        assert_eq!(gguf_name(Arch::Qwen2, "model.layers.0.self_attn.k_proj.bias"), "blk.0.attn_k.bias");
        assert_eq!(gguf_name(Arch::Llama, "model.layers.12.post_attention_layernorm.weight"), "blk.12.ffn_norm.weight");
        assert_eq!(gguf_name(Arch::Gemma3, "model.layers.12.post_attention_layernorm.weight"), "blk.12.post_attention_norm.weight");
        assert_eq!(gguf_name(Arch::Gemma3, "model.layers.1.pre_feedforward_layernorm.weight"), "blk.1.ffn_norm.weight");
        assert_eq!(gguf_name(Arch::Gemma3, "model.layers.1.post_feedforward_layernorm.weight"), "blk.1.post_ffw_norm.weight");
        assert_eq!(gguf_name(Arch::Qwen3, "model.layers.5.self_attn.k_norm.weight"), "blk.5.attn_k_norm.weight");
        assert_eq!(gguf_name(Arch::Llama, "model.embed_tokens.weight"), "token_embd.weight");
        assert_eq!(gguf_name(Arch::Llama, "model.layers.2.mlp.down_proj.weight"), "blk.2.ffn_down.weight");
    }

    /// The permutation llama.cpp's converter applies, written independently of
    /// `unpermute_rows`: reshape (heads, 2, d/2, cols) -> swap axes 1,2.
    fn llama_cpp_permute(w: &[f32], heads: usize, rows: usize, cols: usize) -> Vec<f32> {
        let d = rows / heads;
        let mut out = vec![0f32; w.len()];
        for h in 0..heads {
            for two in 0..2 {
                for half in 0..d / 2 {
                    let src = h * d + two * (d / 2) + half; // (h, two, half)
                    let dst = h * d + half * 2 + two; // (h, half, two)
                    out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
                }
            }
        }
        out
    }

    /// Q4_0 and Q5_0, rewritten as Q8_0, hold exactly the same weights.
    #[test]
    fn exact_q8_0_rewrite_is_lossless() {
        let w = Tensor::randn(0f32, 1.0, (8, 64), &Device::Cpu).unwrap();
        for dt in [GgmlDType::Q4_0, GgmlDType::Q5_0] {
            let q = QTensor::quantize(&w, dt).unwrap();
            let q8 = exact_q8_0(&q).unwrap().unwrap();
            assert_eq!(q8.dtype(), GgmlDType::Q8_0);
            let diff = (q8.dequantize(&Device::Cpu).unwrap() - q.dequantize(&Device::Cpu).unwrap())
                .unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(diff, 0.0, "{dt:?}");
        }
        assert!(exact_q8_0(&QTensor::quantize(&w, GgmlDType::Q4_1).unwrap()).unwrap().is_none());
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        let (heads, rows, cols) = (3, 12, 32);
        let hf: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let gg = llama_cpp_permute(&hf, heads, rows, cols);
        let q = QTensor::quantize(&Tensor::from_vec(gg, (rows, cols), &Device::Cpu).unwrap(), GgmlDType::F32).unwrap();
        let back = unpermute_rows(&q, heads).unwrap().dequantize(&Device::Cpu).unwrap();
        assert_eq!(back.flatten_all().unwrap().to_vec1::<f32>().unwrap(), hf);
    }
}
