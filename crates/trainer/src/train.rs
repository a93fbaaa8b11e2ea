//! The training loop: micro-batches through the model with differentiable ops,
//! loss on assistant tokens, gradient accumulation, clipping, AdamW with a
//! warmup + cosine schedule, holdout evaluation, early stopping, checkpoints,
//! and the PEFT adapter plus `run.json` at the end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use engine::adapter::{self, AdapterConfig};
use engine::{Model, Pass, WeightMode};
use qlora::GradSink;
use rand::SeedableRng;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::data::{self, Batch, DataReport, Example, IGNORE};
use crate::error::{Result, TrainError};
use crate::memory::{self, MemoryEstimate};
use crate::optim::{clip_global_norm, lr_at, AdamW};
use crate::progress::{process_memory, EvalRecord, Event, SampleSet, Status, StepMetrics};
use crate::state::{self, Best, Cursor, State, Tensors};

/// Rows of hidden states turned into logits at once (bounds the logits' memory).
const LOSS_CHUNK: usize = 128;

pub struct Trainer {
    pub config: TrainConfig,
    pub model: Model,
    opt: AdamW,
    train: Vec<Example>,
    holdout: Vec<Example>,
    pub data_report: DataReport,
    pub holdout_report: Option<DataReport>,
    pub total_steps: usize,
    pub trainable_params: usize,
    state: State,
    best_adapter: Option<HashMap<String, Tensor>>,
    resumed_from: Option<usize>,
    /// Predicted peak memory (see memory.rs).
    pub estimate: MemoryEstimate,
    sink: GradSink,
    pad: u32,
    batches: Option<(usize, Vec<Vec<usize>>)>,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: Status,
    pub steps: usize,
    pub adapter: PathBuf,
    pub final_loss: Option<f64>,
    pub holdout_loss: Option<f64>,
}

impl Trainer {
    /// Loads the model with a frozen base, reads the data, puts fresh adapters on
    /// the target layers; with `resume`, restores the latest checkpoint in `out`
    /// (and its settings: the saved ones win over `config`, except the length of
    /// the run, which may be extended).
    pub fn new(config: TrainConfig, resume: bool) -> Result<Trainer> {
        let (config, restored) = if resume {
            let (dir, st, tensors) = state::load_latest(&config.out)?;
            let mut saved = st.config.clone();
            saved.length = config.length;
            (saved, Some((dir, st, tensors)))
        } else {
            (config, None)
        };
        config.validate()?;
        let estimate = check_memory(&config)?;
        let model = Model::load_with(&config.model, WeightMode::Frozen(config.quant), &Device::Cpu)?;
        let (train, data_report) = data::load(&config.data, &model.vocab, &model.template, config.seq_len)?;
        if train.is_empty() {
            return Err(TrainError::Data(format!(
                "no usable training record in {}: {}",
                config.data.display(),
                data_report.summary()
            )));
        }
        let (holdout, holdout_report) = match config.holdout_path() {
            Some(p) => {
                let (h, r) = data::load(&p, &model.vocab, &model.template, config.seq_len)?;
                (h, Some(r))
            }
            None => (Vec::new(), None),
        };
        Self::assemble(config, model, estimate, (train, data_report), (holdout, holdout_report), restored)
    }

    /// A run on given examples (benchmarks: synthetic token ids), no holdout.
    pub fn from_examples(config: TrainConfig, train: Vec<Example>) -> Result<Trainer> {
        config.validate()?;
        if train.is_empty() {
            return Err(TrainError::Data("no examples".into()));
        }
        let estimate = check_memory(&config)?;
        let model = Model::load_with(&config.model, WeightMode::Frozen(config.quant), &Device::Cpu)?;
        let report = DataReport {
            file: "(given examples)".into(),
            records: train.len(),
            used: train.len(),
            tokens: train.iter().map(|e| e.ids.len()).sum(),
            trained_tokens: train.iter().map(|e| e.trained_tokens()).sum(),
            ..Default::default()
        };
        Self::assemble(config, model, estimate, (train, report), (Vec::new(), None), None)
    }

    fn assemble(
        config: TrainConfig,
        mut model: Model,
        estimate: MemoryEstimate,
        (train, data_report): (Vec<Example>, DataReport),
        (holdout, holdout_report): (Vec<Example>, Option<DataReport>),
        restored: Option<(PathBuf, State, Tensors)>,
    ) -> Result<Trainer> {
        let lora = config.lora_config();
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let trainable_params = adapter::attach_new(&mut model, &lora, &config.targets, &mut rng)?;
        let total_steps = config.total_steps(train.len());
        let pad = model.vocab.eos().first().copied().unwrap_or(0);

        let mut state = State {
            format: 1,
            config: config.clone(),
            step: 0,
            total_steps,
            cursor: Cursor { epoch: 0, batch_in_epoch: 0, micro_batches_done: 0 },
            history: Vec::new(),
            evals: Vec::new(),
            best: None,
            evals_without_improvement: 0,
            samples: Vec::new(),
        };
        let mut best_adapter = None;
        let mut resumed_from = None;
        if let Some((dir, _, _)) = &restored {
            adapter::load(&mut model, dir).map_err(|e| TrainError::Resume(e.to_string()))?;
        }
        let mut opt = AdamW::new(model.adapter_vars(), config.adamw)?;
        if let Some((_, st, tensors)) = restored {
            for s in &mut opt.slots {
                let get = |k: String| tensors.moments.get(&k).cloned().ok_or_else(|| TrainError::Resume(format!("the checkpoint lacks `{k}`")));
                s.exp_avg = get(format!("{}.exp_avg", s.name))?;
                s.exp_avg_sq = get(format!("{}.exp_avg_sq", s.name))?;
            }
            opt.step = st.step;
            resumed_from = Some(st.step);
            best_adapter = tensors.best_adapter;
            state = State { total_steps, config: config.clone(), ..st };
        }
        Ok(Trainer {
            config,
            model,
            opt,
            train,
            holdout,
            data_report,
            holdout_report,
            total_steps,
            trainable_params,
            state,
            best_adapter,
            resumed_from,
            estimate,
            sink: GradSink::new(),
            pad,
            batches: None,
        })
    }

    pub fn step(&self) -> usize {
        self.state.step
    }

    /// Runs to the end, or until `cancel` is set (a checkpoint is saved first).
    pub fn run(&mut self, on_event: &mut dyn FnMut(&Event), cancel: &AtomicBool) -> Result<Outcome> {
        on_event(&Event::Started {
            total_steps: self.total_steps,
            trainable_params: self.trainable_params,
            examples: self.train.len(),
            holdout_examples: self.holdout.len(),
            resumed_from: self.resumed_from,
            data: self.data_report.clone(),
            holdout: self.holdout_report.clone(),
            memory_estimate: self.estimate.clone(),
        });
        self.write_run_json(Status::Running)?;
        if !self.holdout.is_empty() && self.state.step == 0 && self.state.evals.is_empty() {
            // The base model's holdout loss (the adapters start as the identity):
            // what the run is measured against.
            let e = self.evaluate()?;
            on_event(&Event::Eval(e));
        }
        let started = Instant::now();
        let first_step = self.state.step;
        let mut status = Status::Finished;
        while self.state.step < self.total_steps {
            if cancel.load(Ordering::Relaxed) {
                status = Status::Cancelled;
                break;
            }
            let Some(metrics) = self.optimizer_step(started, first_step, cancel)? else {
                status = Status::Cancelled;
                break;
            };
            on_event(&Event::Step(metrics));
            let step = self.state.step;
            let mut stop_early = false;
            if !self.holdout.is_empty() && self.config.eval_every > 0 && step.is_multiple_of(self.config.eval_every) && step < self.total_steps {
                let e = self.evaluate()?;
                on_event(&Event::Eval(e));
                if let Some(p) = self.config.early_stopping_patience {
                    stop_early = self.state.evals_without_improvement >= p;
                }
            }
            if self.config.eval_every > 0 && step.is_multiple_of(self.config.eval_every) && step < self.total_steps {
                self.sample_replies(on_event)?;
            }
            if self.config.checkpoint_every > 0 && step.is_multiple_of(self.config.checkpoint_every) && step < self.total_steps {
                let path = self.save_checkpoint()?;
                on_event(&Event::Checkpoint { step, path });
            }
            // run.json follows the run: a reader sees every finished step.
            self.write_run_json(Status::Running)?;
            if stop_early {
                status = Status::EarlyStopped;
                break;
            }
        }
        if status == Status::Finished && !self.holdout.is_empty() && self.state.evals.last().map(|e| e.step) != Some(self.state.step) {
            let e = self.evaluate()?;
            on_event(&Event::Eval(e));
        }
        if status != Status::Cancelled && self.state.samples.last().map(|s| s.step) != Some(self.state.step) {
            self.sample_replies(on_event)?;
        }
        let path = self.save_checkpoint()?;
        on_event(&Event::Checkpoint { step: self.state.step, path });
        let adapter_dir = self.config.out.clone();
        if status != Status::Cancelled {
            self.write_final_adapter(&adapter_dir)?;
        }
        self.write_run_json(status)?;
        on_event(&Event::Finished { status, adapter: adapter_dir.clone() });
        Ok(Outcome {
            status,
            steps: self.state.step,
            adapter: adapter_dir,
            final_loss: self.state.history.last().map(|m| m.loss),
            holdout_loss: self.state.evals.last().map(|e| e.holdout_loss),
        })
    }

    /// One optimizer step over `grad_accum` micro-batches. `None` when cancelled
    /// midway (the partial gradients are discarded; the step is not taken).
    fn optimizer_step(&mut self, started: Instant, first_step: usize, cancel: &AtomicBool) -> Result<Option<StepMetrics>> {
        let accum = self.config.grad_accum;
        let mut grads: Vec<Option<Tensor>> = vec![None; self.opt.slots.len()];
        let mut loss_sum = 0f64;
        let mut tokens = 0usize;
        let mut micro = self.state.cursor.micro_batches_done;
        let mut cursor = self.state.cursor.clone();
        for _ in 0..accum {
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let batch = self.batch_at(&mut cursor)?;
            tokens += batch.tokens();
            let pass = Pass {
                grad: true,
                dropout_seed: (self.config.dropout > 0.0).then(|| mix(self.config.seed, micro as u64)),
                checkpoint: self.config.gradient_checkpointing.then(|| self.sink.clone()),
            };
            let loss = self.loss(&batch, &pass)?;
            let lv = loss.to_scalar::<f32>()? as f64;
            if !lv.is_finite() {
                return Err(self.diverged(format!("the loss is {lv}")));
            }
            loss_sum += lv;
            let store = (loss / accum as f64)?.backward()?;
            for (g, s) in grads.iter_mut().zip(&self.opt.slots) {
                if let Some(new) = self.sink.take(&s.var, &store)? {
                    *g = Some(match g.take() {
                        Some(prev) => (prev + new)?,
                        None => new,
                    });
                }
            }
            self.sink.clear();
            micro += 1;
        }
        let grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&self.opt.slots)
            .map(|(g, s)| g.map(Ok).unwrap_or_else(|| s.var.as_tensor().zeros_like()))
            .collect::<candle_core::Result<_>>()?;
        let (grads, grad_norm) = clip_global_norm(grads, self.config.max_grad_norm)?;
        let loss = loss_sum / accum as f64;
        let first_loss = self.state.history.first().map(|m| m.loss).unwrap_or(loss);
        if !grad_norm.is_finite() {
            return Err(self.diverged(format!("the gradient norm is {grad_norm}")));
        }
        if loss > (4.0 * first_loss).max(20.0) {
            return Err(self.diverged(format!("the loss rose to {loss:.2} from {first_loss:.2}")));
        }
        let step = self.state.step;
        let lr = lr_at(step, self.total_steps, self.config.warmup_steps, self.config.lr);
        self.opt.step(&grads, lr)?;
        self.state.step += 1;
        self.state.cursor = Cursor { micro_batches_done: micro, ..cursor };

        let elapsed = started.elapsed().as_secs_f64();
        let done_here = (self.state.step - first_step) as f64;
        let session_tokens: usize = self.state.history.iter().skip(first_step).map(|m| m.tokens).sum::<usize>() + tokens;
        let (rss, peak) = process_memory();
        let m = StepMetrics {
            step: self.state.step,
            total_steps: self.total_steps,
            epoch: micro as f64 / self.batches_per_epoch() as f64,
            loss,
            lr,
            grad_norm,
            tokens,
            tokens_per_s: session_tokens as f64 / elapsed.max(1e-9),
            elapsed_s: elapsed,
            eta_s: elapsed / done_here * (self.total_steps - self.state.step) as f64,
            rss_bytes: rss,
            peak_rss_bytes: peak,
            gpu_bytes: None,
        };
        self.state.history.push(m.clone());
        Ok(Some(m))
    }

    fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.config.batch)
    }

    /// The micro-batch at `cursor`, advancing it (into the next epoch when needed).
    fn batch_at(&mut self, cursor: &mut Cursor) -> Result<Batch> {
        if cursor.batch_in_epoch >= self.batches_per_epoch() {
            cursor.epoch += 1;
            cursor.batch_in_epoch = 0;
        }
        if self.batches.as_ref().map(|(e, _)| *e) != Some(cursor.epoch) {
            let b = data::epoch_batches(&self.train, self.config.batch, self.config.seed, cursor.epoch);
            self.batches = Some((cursor.epoch, b));
        }
        let (_, order) = self.batches.as_ref().expect("just set");
        let members: Vec<&Example> = order[cursor.batch_in_epoch].iter().map(|&i| &self.train[i]).collect();
        cursor.batch_in_epoch += 1;
        Ok(Batch::of(&members, self.pad))
    }

    /// Mean cross-entropy over the batch's trained tokens.
    fn loss(&self, batch: &Batch, pass: &Pass) -> Result<Tensor> {
        let (sum, n) = nll_sum(&self.model, batch, pass)?;
        Ok((sum / n as f64)?)
    }

    /// Token-weighted mean loss on the holdout records (no gradients, fused kernels).
    pub fn holdout_loss(&self) -> Result<f64> {
        let mut total = 0f64;
        let mut n = 0usize;
        for ex in &self.holdout {
            let batch = Batch::of(&[ex], self.pad);
            let (s, k) = nll_sum(&self.model, &batch, &Pass::inference())?;
            total += s.to_scalar::<f32>()? as f64;
            n += k;
        }
        Ok(total / n.max(1) as f64)
    }

    fn evaluate(&mut self) -> Result<EvalRecord> {
        let loss = self.holdout_loss()?;
        let improved = self.state.best.as_ref().is_none_or(|b| loss < b.holdout_loss);
        if improved {
            self.state.best = Some(Best { step: self.state.step, holdout_loss: loss });
            self.best_adapter = Some(adapter::adapter_tensors(&self.model)?);
            self.state.evals_without_improvement = 0;
        } else {
            self.state.evals_without_improvement += 1;
        }
        let e = EvalRecord { step: self.state.step, holdout_loss: loss, best: improved };
        self.state.evals.push(e.clone());
        Ok(e)
    }

    /// Greedy replies to the sample prompts (none configured: nothing to do).
    fn sample_replies(&mut self, on_event: &mut dyn FnMut(&Event)) -> Result<()> {
        if self.config.sample_prompts.is_empty() {
            return Ok(());
        }
        let set = crate::samples::replies(&self.model, &self.config.sample_prompts, self.config.sample_max_tokens, self.state.step)?;
        self.state.samples.push(set.clone());
        on_event(&Event::Samples(set));
        Ok(())
    }

    fn adapter_config(&self) -> AdapterConfig {
        let lora = self.config.lora_config();
        let base = self.config.model.display().to_string();
        AdapterConfig::new(&lora, &self.config.targets, &base)
    }

    /// Saves a checkpoint of the current step.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let mut moments = HashMap::new();
        for s in &self.opt.slots {
            moments.insert(format!("{}.exp_avg", s.name), s.exp_avg.clone());
            moments.insert(format!("{}.exp_avg_sq", s.name), s.exp_avg_sq.clone());
        }
        let tensors = Tensors { moments, best_adapter: self.best_adapter.clone() };
        let cfg = self.adapter_config();
        let model = &self.model;
        state::save(&self.config.out, &self.state, &tensors, self.config.keep_checkpoints, |dir| {
            adapter::save(model, dir, &cfg).map_err(TrainError::from)
        })
    }

    /// The adapter the run hands over: the best one on the holdout when one was
    /// evaluated, the last one otherwise.
    fn write_final_adapter(&self, dir: &Path) -> Result<()> {
        let cfg = self.adapter_config();
        match (&self.best_adapter, &self.state.best) {
            (Some(best), Some(b)) if b.step != self.state.step => adapter::write(best, dir, &cfg)?,
            _ => adapter::save(&self.model, dir, &cfg)?,
        }
        Ok(())
    }

    fn diverged(&self, what: String) -> TrainError {
        let _ = self.write_run_json(Status::Diverged);
        let checkpoint = state::latest(&self.config.out).map(|p| p.display().to_string()).unwrap_or_else(|| "none was saved yet".into());
        TrainError::Diverged { step: self.state.step + 1, what, checkpoint }
    }

    /// `run.json`: the settings, the data report, and every step's metrics.
    fn write_run_json(&self, status: Status) -> Result<()> {
        #[derive(Serialize)]
        struct Run<'a> {
            status: Status,
            config: &'a TrainConfig,
            model: &'a engine::ModelInfo,
            trainable_params: usize,
            memory_estimate: &'a MemoryEstimate,
            total_steps: usize,
            steps_done: usize,
            data: &'a DataReport,
            holdout: &'a Option<DataReport>,
            best: &'a Option<Best>,
            adapter: Option<String>,
            steps: &'a [StepMetrics],
            evals: &'a [EvalRecord],
            samples: &'a [SampleSet],
        }
        let adapter = match (status, &self.state.best) {
            (Status::Running | Status::Cancelled | Status::Diverged, _) => None,
            (_, Some(b)) if b.step != self.state.step => Some(format!("best on the holdout, from step {}", b.step)),
            _ => Some(format!("last, from step {}", self.state.step)),
        };
        let run = Run {
            status,
            config: &self.config,
            model: &self.model.info,
            trainable_params: self.trainable_params,
            memory_estimate: &self.estimate,
            total_steps: self.total_steps,
            steps_done: self.state.step,
            data: &self.data_report,
            holdout: &self.holdout_report,
            best: &self.state.best,
            adapter,
            steps: &self.state.history,
            evals: &self.state.evals,
            samples: &self.state.samples,
        };
        std::fs::create_dir_all(&self.config.out).map_err(|e| TrainError::Io { path: self.config.out.display().to_string(), why: e.to_string() })?;
        let json = serde_json::to_vec_pretty(&run).expect("run serialises");
        adapter::write_atomic(&self.config.out.join("run.json"), &json)?;
        Ok(())
    }
}

/// Refuses a run whose predicted peak memory exceeds what the system has free.
fn check_memory(config: &TrainConfig) -> Result<MemoryEstimate> {
    let (shape, file_bytes) = Model::peek_config(&config.model)?;
    let estimate = memory::estimate(&shape, file_bytes, config);
    if let Some(have) = memory::available() {
        if estimate.total > have {
            return Err(TrainError::WillNotFit {
                need_mib: MemoryEstimate::mib(estimate.total),
                have_mib: MemoryEstimate::mib(have),
                advice: memory::advice(config, &estimate),
            });
        }
    }
    Ok(estimate)
}

/// A 64-bit mix of two numbers (SplitMix64's finalizer): seeds for dropout.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Sum of the negative log-likelihoods of the batch's trained tokens, and their
/// count. Only positions whose next token is trained go through the output
/// head, in chunks of `LOSS_CHUNK` rows; with checkpointing each chunk's logits
/// are recomputed in the backward pass instead of kept.
pub fn nll_sum(model: &Model, batch: &Batch, pass: &Pass) -> Result<(Tensor, usize)> {
    let rows = batch.ids.len();
    let len = batch.ids[0].len();
    let flat: Vec<u32> = batch.ids.iter().flatten().copied().collect();
    let ids = Tensor::from_vec(flat, (rows, len), &model.device)?;
    let hidden = model.forward_train(&ids, pass)?;
    let h = hidden.dim(D::Minus1)?;
    let hidden = hidden.reshape((rows * len, h))?;
    let mut pos = Vec::new();
    let mut tgt = Vec::new();
    for (r, labels) in batch.labels.iter().enumerate() {
        for p in 0..len.saturating_sub(1) {
            let l = labels[p + 1];
            if l != IGNORE {
                pos.push((r * len + p) as u32);
                tgt.push(l as u32);
            }
        }
    }
    let n = pos.len();
    if n == 0 {
        return Err(TrainError::Data("a batch has no trained tokens".into()));
    }
    let sel = hidden.index_select(&Tensor::new(pos.as_slice(), &model.device)?, 0)?;
    let mut total: Option<Tensor> = None;
    for start in (0..n).step_by(LOSS_CHUNK) {
        let c = LOSS_CHUNK.min(n - start);
        let x = sel.narrow(0, start, c)?;
        let t = tgt[start..start + c].to_vec();
        let part = match &pass.checkpoint {
            Some(sink) if pass.grad => {
                let head = model.lm_head().clone();
                let block: qlora::Block = Arc::new(move |x: &Tensor| chunk_nll(&head, x, &t));
                qlora::checkpoint(&x, block, Vec::new(), sink)?
            }
            _ => chunk_nll(model.lm_head(), &x, &t)?,
        };
        total = Some(match total {
            Some(s) => (s + part)?,
            None => part,
        });
    }
    Ok((total.expect("n > 0"), n))
}

/// `-sum(log_softmax(x W^T)[target])` over the rows of `x` (one fused op on the
/// CPU; composed from candle's ops elsewhere).
fn chunk_nll(head: &engine::Linear, x: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
    let logits = head.forward(x)?.to_dtype(DType::F32)?;
    if qlora::fused::supported(&logits) {
        return qlora::fused::nll_sum(&logits, targets);
    }
    let targets = Tensor::new(targets, logits.device())?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let picked = shifted.gather(&targets.unsqueeze(1)?, 1)?;
    (lse - picked)?.sum_all()
}
