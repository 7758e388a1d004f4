#!/usr/bin/env bash
# Times gemm_mma.cl's tiles on an NVIDIA GPU (ATTRIB_MMA_TILE_TF32 or _BF16 = BM,BN,BK,WM,WN,NBUF; each is
# checked against the rounded operands' product before its first use) at n^3 and prints
# GFLOP/s per tile; the last line names the fastest per precision, for ATTRIB_MMA_TILE_TF32 and _BF16.
#   Benchmarks/mma_tiles.sh [N]     (after `source .device/env.sh` on a GPU host)
n=${1:-4096}
best() { sort -t' ' -k3 -g | tail -n 1; }
for prec in tf32 bf16; do
  if [ $prec = tf32 ]; then
    tiles="128,128,16,2,4,2 128,128,32,2,4,1 128,128,32,2,2,1 128,128,8,2,4,2 128,64,32,2,2,1 256,128,16,4,2,1 128,256,16,2,4,1"
  else
    tiles="128,128,32,2,4,2 128,128,64,2,4,1 128,128,32,2,2,2 256,128,32,4,2,1 128,256,32,2,4,1 128,128,16,2,4,2"
  fi
  for t in $tiles; do
    r=$(env ATTRIB_MMA_TILE_${prec^^}=$t timeout 60 attrib bench gemm --device opencl:0 --precision $prec --sizes "$n" --seconds 0.3 \
          --check-up-to 0 --json 2>/tmp/mma_err.txt | python3 -c "import json,sys; t=sys.stdin.read(); r=json.loads(t[t.find('['):])[0]; print(f\"{r['gflops']:.1f} {r['parameters']}\")" 2>/dev/null)
    echo "$prec $t ${r:-failed: $(grep -v '^precision' /tmp/mma_err.txt | tail -c 300)}"
  done
done | tee /tmp/mma_tiles.txt
for prec in tf32 bf16; do
  echo "fastest $prec: $(grep "^$prec " /tmp/mma_tiles.txt | grep -v failed | sort -k3 -g | tail -n 1)"
done
