#!/usr/bin/env bash
# One call's worth of checks and measurements on a GPU host that has no Swift.
# Build and pack here first (BUILDING.md, "A binary for a GPU host"):
#   ../shared/gpu/pack-for-device attrib && scripts/pack-tests-for-device.sh
# then, on the host, from a copy of the project root holding .device/ (and .whl/
# with captum's wheel where the host's Python lacks it):
#   source .device/env.sh && Benchmarks/gpu_host.sh [OUTDIR]
# Issue 20's next call (about 8 minutes; 8 files come back, the device tool's limit):
#   source .device/env.sh && STEPS=probe,mmatiles,gemm20,conv,igprec,precision,gemmtests \
#     TUNE_BUDGET=30 IG_INPUTS=1024 Benchmarks/gpu_host.sh "$OUT"
# Issue 16's GPU table (models unlike the bundled ones, attrib against Captum and IG written
# directly in PyTorch on CUDA; one file, ig-unlike.txt): STEPS=unlike (about 4 minutes).
# (carry .device and .whl; pack the tests too; dedupe .device/tests/lib against .device/lib
# with symbolic links if the tree is near the 64 MiB limit).
# Steps (STEPS, comma-separated; default all), each under its own time limit so
# one hang cannot eat the lease:
#   devices    what OpenCL sees (and, when it sees no GPU, why: ICD files, drivers);
#   gemm       GEMM on the GPU: rate and error against the CPU backend, untuned;
#   tune       attrib tune gemm (every variant), then the tuned rate;
#   parity     IG on the GPU against the CPU backend, compared;
#   throughput Benchmarks/ig_throughput.py: attrib on the GPU against Captum on CUDA;
#   engine     the same, attrib alone on all N inputs (--engine-only);
#   memory     IG of 1,000 inputs at m = 4096 on the wide MLP: peak GPU memory
#              (nvidia-smi, sampled) and the process's peak RSS;
#   cpublas    the host's CPU backend: OpenBLAS's kernels as chosen, and SkylakeX;
#   shared     one GPU shared by 2 processes (--shard 0/2 and 1/2 at once) against 1 process,
#              IG on digits-cnn, 20000 inputs, m = 64, and the two files compared (cmp);
#   probe      attrib devices --probe (appended to devices.txt): the tensor-core probe (inline PTX mma.sync through
#              NVIDIA's OpenCL compiler), its PTX target, and the dense tf32/bf16 peaks;
#   mmatiles   Benchmarks/mma_tiles.sh: gemm_mma.cl's tiles timed at 4096^3 (TF32, BF16); the
#              fastest of each is exported (ATTRIB_MMA_TILE_TF32, _BF16) for the steps after it;
#   gemm20     issue 20's GEMM table: attrib tune gemm (NN, NT, 60-s budget), then
#              Benchmarks/gemm_vs_torch.py (FP32, TF32, BF16 at 1024-8192 beside torch.matmul)
#              and the sweeps' shapes (M = 64..8192 against 4096x4096 and 768x3072 weights);
#   igprec     IG on the wide MLP: attrib against IG written directly in PyTorch on CUDA
#              (and Captum), FP32 against FP32 and TF32 against TF32; then attrib alone with
#              the fused GEMM epilogues off (ATTRIB_FUSED_EPILOGUE=0);
#   conv       IG on ResNet-50 (N = 16, m = 32): implicit-GEMM convolutions against im2col,
#              beside PyTorch on CUDA, then without the fused Conv -> ReLU epilogues;
#   vit        issue 17's ViT-B/16 (torchvision, N = 16, m = 32) against PyTorch on CUDA;
#   unlike     issue 16's GPU table: IG (N = 64 and 1024, m = 64) on relu-cnn, tanh-mlp, s2-cnn,
#              res-mlp and ResNet-18, attrib against Captum and direct PyTorch on CUDA;
#   precision  Benchmarks/precision_effect.py: what tf32 and bf16 do to each method's result;
#   gemmtests  the GEMM, precision and fused-epilogue suites of the Swift tests alone (the
#              tensor-core kernels against the CPU's product of the rounded operands);
#   tests      the Swift Testing suite (parity tests on the GPU), in the time left.
# Logs go to OUTDIR (default $OUT, else /tmp/attrib-gpu), one file per step.
# BUDGET_S (default 540) is the whole script's time: the test suite gets what is left.
# TORCH_DEVICE (default cuda) and IG_ARGS (extra ig_throughput.py arguments) are for
# trying the script on a machine without CUDA.
set -u
# The BF16 tensor-core kernel is off by default until a GPU run confirms it (issue 20): on here.
export ATTRIB_TENSOR_CORES_BF16=${ATTRIB_TENSOR_CORES_BF16:-1}
deadline=$((SECONDS + ${BUDGET_S:-540}))
out=${1:-${OUT:-/tmp/attrib-gpu}}
mkdir -p "$out"
root=$(pwd)
steps=",${STEPS:-devices,gemm,tune,parity,throughput,engine,memory,cpublas,shared,llm,tests},"
want() { [[ "$steps" == *",$1,"* ]]; }
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "host"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/host.txt"
nproc | tee -a "$out/host.txt"

step "attrib devices"
timeout 60 attrib devices 2>&1 | tee "$out/devices.txt"
if ! grep -q "kind            GPU" "$out/devices.txt"; then
  # .device/env.sh registers NVIDIA's driver only where the host has no .icd file at
  # all; the CUDA image here has PoCL's, so the loader never sees the GPU. Register
  # NVIDIA's alone (then "opencl" below is the GPU, and the tests run on it).
  nv=$(ls /usr/lib/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 \
          /usr/local/nvidia/lib64/libnvidia-opencl.so.1 2>/dev/null | head -n 1)
  if [ -n "$nv" ]; then
    mkdir -p /tmp/attrib-icd && echo "$nv" > /tmp/attrib-icd/nvidia.icd && export OCL_ICD_VENDORS=/tmp/attrib-icd
    step "attrib devices, with OCL_ICD_VENDORS=/tmp/attrib-icd ($nv)"
    timeout 60 attrib devices 2>&1 | tee "$out/devices.txt"
  fi
fi
if ! grep -q "kind            GPU" "$out/devices.txt"; then
  step "no OpenCL GPU: what the loader sees"
  {
    echo "OCL_ICD_VENDORS=${OCL_ICD_VENDORS:-}"; ls -la /etc/OpenCL/vendors 2>&1
    [ -n "${OCL_ICD_VENDORS:-}" ] && cat "$OCL_ICD_VENDORS"/*.icd
    find / -xdev \( -name 'libnvidia-opencl*' -o -name 'libcuda.so*' \) 2>/dev/null | head
    for l in $(find / -xdev -name 'libnvidia-opencl.so*' 2>/dev/null | head -n 2); do ldd "$l"; done
    ls /dev/nvidia* 2>&1
    OCL_ICD_DEBUG=15 timeout 60 attrib devices
  } 2>&1 | tee "$out/opencl-diagnosis.txt"
  exit 1
fi

if want probe; then
  step "Tensor-core probe (inline PTX mma.sync) and peaks"
  timeout 90 attrib devices --probe 2>&1 | tee -a "$out/devices.txt"
fi
if want mmatiles; then
  step "gemm_mma.cl tiles at 4096^3"
  Benchmarks/mma_tiles.sh 4096 2>&1 | tee "$out/mma-tiles.txt"
  t=$(awk '/^fastest tf32/ {print $4}' "$out/mma-tiles.txt"); [ -n "$t" ] && export ATTRIB_MMA_TILE_TF32=$t
  t=$(awk '/^fastest bf16/ {print $4}' "$out/mma-tiles.txt"); [ -n "$t" ] && export ATTRIB_MMA_TILE_BF16=$t
  echo "ATTRIB_MMA_TILE_TF32=${ATTRIB_MMA_TILE_TF32:-} ATTRIB_MMA_TILE_BF16=${ATTRIB_MMA_TILE_BF16:-}"
fi
if want gemm20; then
  step "GEMM: tune NN and NT (60-s budget), then attrib against torch.matmul, FP32/TF32/BF16"
  { timeout 100 attrib tune gemm --device opencl:0 --variants NN,NT --budget "${TUNE_BUDGET:-60}"
    PYTHONUNBUFFERED=1 timeout 150 python3 Benchmarks/gemm_vs_torch.py --attrib "$(command -v attrib)" --device opencl:0 \
      --sizes "${GEMM_SIZES:-1024,2048,4096,8192}"
    for p in fp32 tf32; do
      timeout 60 attrib bench gemm --device opencl:0 --precision $p --seconds 0.2 --check-up-to 0 \
        --shapes 64x4096x4096,512x4096x4096,8192x4096x4096,64x3072x768,512x3072x768,8192x3072x768,8192x768x3072
    done; } 2>&1 | tee "$out/gemm20.txt"
fi
if want gemm; then
  step "GEMM on the GPU, untuned: rate and error against the CPU backend"
  timeout 120 attrib bench gemm --device opencl --sizes 1024,4096 2>&1 | tee "$out/gemm-untuned.txt"
fi
if want tune; then
  step "attrib tune gemm (every transpose variant)"
  t0=$SECONDS
  timeout 180 attrib tune gemm --device opencl 2>&1 | tee "$out/tune.txt"
  echo "tuning took $((SECONDS - t0)) s" | tee -a "$out/tune.txt"
  step "GEMM on the GPU, tuned"
  timeout 120 attrib bench gemm --device opencl --sizes 1024,4096 2>&1 | tee "$out/gemm-tuned.txt"
fi

if want parity; then
step "IG parity: GPU against the CPU backend (64 inputs, m = 64, Gauss-Legendre)"
par="$out/parity"; mkdir -p "$par"
for model in digits-cnn digits-mlp; do
  for dev in opencl cpu; do
    timeout 120 attrib ig --model "Models/$model" --inputs Models/digits-data/test_inputs.npy --limit 64 \
      --targets Models/digits-data/test_labels.npy --steps 64 --method gauss_legendre --device "$dev" --no-heatmaps --quiet \
      --force --out "$par/$model-$dev" > "$par/$model-$dev.log" 2>&1 || echo "attrib ig $model on $dev failed: $(tail -3 "$par/$model-$dev.log")"
  done
done
python3 - "$par" <<'EOF' 2>&1 | tee "$out/parity.txt"
import sys, numpy as np
par = sys.argv[1]
for model in ("digits-cnn", "digits-mlp"):
    try:
        g = np.load(f"{par}/{model}-opencl/attributions.npy").astype(np.float64)
        c = np.load(f"{par}/{model}-cpu/attributions.npy").astype(np.float64)
        dg = np.load(f"{par}/{model}-opencl/deltas.npy"); dc = np.load(f"{par}/{model}-cpu/deltas.npy")
    except OSError as e:
        print(f"{model}: missing output: {e}"); continue
    scale = np.abs(c).max()
    err = np.abs(g - c).max()
    print(f"{model}: attributions {g.shape}, max |GPU - CPU| = {err:.3e}, max |CPU| = {scale:.3e}, "
          f"ratio {err / scale:.3e}; max |delta| GPU {np.abs(dg).max():.3e}, CPU {np.abs(dc).max():.3e}; "
          f"finite: {np.isfinite(g).all()}")
EOF
fi

if ! python3 -c "import captum" 2>/dev/null && ls .whl/captum-*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# --max-repeat 3: on the GPU every attrib round is a new process that sets up OpenCL (about a
# second), so the extra rounds the script gives short Captum runs would not fit the time limits.
ig_args=(--torch-device "${TORCH_DEVICE:-cuda}" --devices opencl --threads "$(nproc)" --repeat 3 --max-repeat 3 --batch-mb 4096
         --engine-timeout 60 --attrib "$(command -v attrib)")
if want igprec; then
  step "IG on the wide MLP: attrib against direct PyTorch and Captum on CUDA, FP32 and TF32"
  # Then attrib alone with the fused GEMM epilogues off (ATTRIB_FUSED_EPILOGUE=0): what the
  # fusion of bias, activation and f′ into the products, and of dy ⊙ f′ into the backward's
  # operand, gives on the same build.
  for p in ${IG_PRECISIONS:-fp32 tf32}; do
    PYTHONUNBUFFERED=1 timeout 110 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 2 --models wide-mlp \
      --inputs "${IG_INPUTS:-64,1024}" --steps 64 --precision $p 2>&1
    echo "ATTRIB_FUSED_EPILOGUE=0, $p:"
    ATTRIB_FUSED_EPILOGUE=0 PYTHONUNBUFFERED=1 timeout 60 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 2 \
      --models wide-mlp --inputs "${IG_INPUTS:-64,1024}" --steps 64 --precision $p --engine-only 2>&1
  done | tee "$out/ig-wide-mlp.txt"
fi
if want conv; then
  # ResNet-50 (torchvision, random weights, through ONNX): convolutions as implicit GEMMs
  # (the GPU default) against im2col + GEMM (ATTRIB_IMPLICIT_CONV=0), beside PyTorch on CUDA.
  step "IG on ResNet-50: implicit-GEMM convolutions, then im2col, against PyTorch on CUDA"
  # Then attrib alone with the implicit GEMMs' fused activations off (ATTRIB_FUSED_EPILOGUE=0).
  { for mode in 1 0; do
      echo "ATTRIB_IMPLICIT_CONV=$mode"
      ATTRIB_IMPLICIT_CONV=$mode PYTHONUNBUFFERED=1 timeout 150 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 4 \
        --models resnet50 --inputs 16 --steps 32 2>&1
    done
    echo "ATTRIB_IMPLICIT_CONV=1 ATTRIB_FUSED_EPILOGUE=0"
    ATTRIB_FUSED_EPILOGUE=0 PYTHONUNBUFFERED=1 timeout 90 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 4 \
      --models resnet50 --inputs 16 --steps 32 --engine-only 2>&1
  } | tee "$out/ig-resnet50.txt"
fi
if want vit; then
  # Issue 17's ViT-B/16 (torchvision's, exported as scripts/export_onnx.py exports it) against PyTorch on CUDA.
  step "IG on ViT-B/16 (torchvision): attrib on the GPU against Captum and direct PyTorch on CUDA"
  PYTHONUNBUFFERED=1 timeout 200 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 4 \
    --models tv-vit-b16 --inputs 16 --steps 32 2>&1 | tee "$out/ig-vit-b16.txt"
fi
if want unlike; then
  step "IG on models unlike the bundled ones: attrib on the GPU against Captum and direct PyTorch on CUDA"
  PYTHONUNBUFFERED=1 timeout 300 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 2 \
    --models relu-cnn,tanh-mlp,s2-cnn,res-mlp,resnet18 --inputs 64,1024 --steps 64 2>&1 | tee "$out/ig-unlike.txt"
fi
if want precision; then
  step "What tf32 and bf16 do to each method's result"
  PYTHONUNBUFFERED=1 timeout 150 python3 Benchmarks/precision_effect.py --attrib "$(command -v attrib)" --device opencl:0 \
    2>&1 | tee "$out/precision-effect.txt"
fi
if want gemmtests && [ -x .device/tests/AttribPackageTests.xctest ]; then
  step "Swift tests: GEMM and precision suites on the GPU"
  ( export LD_LIBRARY_PATH="$root/.device/tests/lib:$LD_LIBRARY_PATH" ATTRIB_SOURCE_ROOT="$root"
    timeout 240 .device/tests/AttribPackageTests.xctest --testing-library swift-testing \
      --filter "GEMMTests|MatmulPrecisionTests|FusedGEMMTests|ConvImplicitGEMMTests|AsyncUploadTests" ) \
    > "$out/gemmtests.txt" 2>&1
  echo "exit $?"; grep -E "✘|Test run with" "$out/gemmtests.txt" | tail -25
fi
if want throughput; then
  step "IG throughput: attrib on the GPU against Captum on CUDA"
  PYTHONUNBUFFERED=1 timeout 330 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --budget 2 ${IG_ARGS:-} \
    2>&1 | tee "$out/ig-throughput.txt"
fi
if want engine; then
  step "IG throughput: attrib alone on the GPU, all N inputs"
  PYTHONUNBUFFERED=1 timeout 200 python3 Benchmarks/ig_throughput.py "${ig_args[@]}" --engine-only ${IG_ARGS:-} \
    2>&1 | tee "$out/ig-engine-only.txt"
fi

if want memory; then
  step "Peak memory: IG of 1,000 inputs at m = 4096 on the wide MLP, on the GPU"
  PYTHONUNBUFFERED=1 timeout 150 python3 Benchmarks/gpu_memory.py "$(command -v attrib)" 2>&1 | tee "$out/memory.txt"
fi

if want cpublas; then
  step "The host's CPU backend: OpenBLAS's kernels as chosen, then OPENBLAS_CORETYPE=SkylakeX"
  { attrib devices 2>&1 | grep -E "BLAS"; timeout 60 attrib bench gemm --device cpu --sizes 2048 --seconds 1
    echo "with OPENBLAS_CORETYPE=SkylakeX:"
    OPENBLAS_CORETYPE=SkylakeX attrib devices 2>&1 | grep -E "BLAS"
    OPENBLAS_CORETYPE=SkylakeX timeout 60 attrib bench gemm --device cpu --sizes 2048 --seconds 1; } 2>&1 | tee "$out/cpublas.txt"
fi

if want shared; then
  step "One GPU shared by 2 processes against 1 (IG, digits-cnn, 20000 inputs, m = 64)"
  sh=$(mktemp -d)
  python3 -c "import numpy as np; x=np.load('Models/digits-data/test_inputs.npy'); np.save('$sh/x.npy', np.resize(x,(20000,)+x.shape[1:]).astype(np.float32))"
  a=(ig --model Models/digits-cnn --inputs "$sh/x.npy" --steps 64 --device opencl:0 --quiet --no-heatmaps)
  { t0=$(date +%s.%N); timeout 120 attrib "${a[@]}" --out "$sh/one" >/dev/null; t1=$(date +%s.%N)
    timeout 120 attrib "${a[@]}" --out "$sh/two" --shard 0/2 >/dev/null & p0=$!
    timeout 120 attrib "${a[@]}" --out "$sh/two" --shard 1/2 >/dev/null & p1=$!
    wait $p0 $p1; t2=$(date +%s.%N)
    python3 -c "one=$t1-$t0; two=$t2-$t1; print(f'1 process: {one:.2f} s; 2 processes on one GPU: {two:.2f} s ({one/two:.2f}x)')"
    cmp "$sh/one/attributions.npy" "$sh/two/attributions.npy" && echo "attributions: 2 processes equal 1, bitwise"; } 2>&1 | tee "$out/shared.txt"
  rm -rf "$sh"
fi

if want llm; then
  # A 1B-class Llama (Llama 3.2 1B's shape, Benchmarks/configs/llama-1b.json) with random weights:
  # nothing to download on a host that reaches nothing. Forward tokens/s (and as a share of the
  # GPU's GEMM rate) and AtP per pair at T = 512 and 2048, Float32 and BF16 weights.
  step "LLM: Llama-1B-shaped, random weights, forward and AtP on the GPU (T = 512)"
  { timeout 180 attrib bench lm --model Benchmarks/configs/llama-1b.json --random --device opencl:0 --tokens 512 --batch 8 --seconds 5
    timeout 120 attrib bench lm --model Benchmarks/configs/llama-1b.json --random --device opencl:0 --tokens 2048 --batch 1 --seconds 5
    # The same with BF16 weights (widened per block into Float32 products): speed and, beside
    # nvidia-smi's memory, what 16-bit storage costs and saves on the GPU.
    timeout 120 attrib bench lm --model Benchmarks/configs/llama-1b.json --random --device opencl:0 --tokens 512 --batch 8 --seconds 5 --dtype bf16; } 2>&1 | tee "$out/llm.txt"
fi

left=$((deadline - SECONDS - 5))
if want tests && [ -x .device/tests/AttribPackageTests.xctest ] && [ "$left" -gt 30 ]; then
  step "Swift Testing suite on this host (OpenCL devices: the GPU), ${left} s left"
  ( export LD_LIBRARY_PATH="$root/.device/tests/lib:$LD_LIBRARY_PATH" ATTRIB_SOURCE_ROOT="$root"
    timeout "$left" .device/tests/AttribPackageTests.xctest --testing-library swift-testing ) \
    > "$out/tests.txt" 2>&1
  echo "exit $?"; grep -E "✘|failed|passed after|Test run with" "$out/tests.txt" | tail -25
fi
