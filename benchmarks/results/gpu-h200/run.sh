#!/bin/bash
# One device call: GPU figures (issue 12) + studies trained on the GPU (issues 9, 10, 11).
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpuout}; mkdir -p $OUT
W=${W:-/tmp/work}; R=$W/results; mkdir -p $W $R
STEPS=${STEPS:-1500}; NA=${NA:-1000}; NB=${NB:-500}; TMAX=${TMAX:-330}; BUDGET=${BUDGET:-3}; NSPEC=${NSPEC:-2000}
DEV=${DEV:-cuda}
t0=$(date +%s)
{
nvidia-smi -L; nproc; free -g | head -2
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
} > $R/machine.txt 2>&1
if [ "$DEV" = cuda ]; then python3 -m pip install -q --no-deps --no-build-isolation . > $R/pip.txt 2>&1 || python3 -m pip install -q --no-deps . >> $R/pip.txt 2>&1; fi
python3 -m forensics --version >> $R/machine.txt 2>&1
cd $W  # the installed package, not the source folder (package-dir mapping)
echo "install done $(( $(date +%s) - t0 )) s"
# --- GPU figures (sequential, nothing else running) ---
[ -n "$SKIPSPEC" ] || timeout 90 python3 $ROOT/benchmarks/bench_spectrum_torch.py --devices numpy,cpu,$DEV --n $NSPEC --reps 3 > $R/bench_spectrum_torch.txt 2>&1
echo "spectrum bench done $(( $(date +%s) - t0 )) s"
timeout 120 python3 $ROOT/benchmarks/bench_train.py --device $DEV --part gans --sizes 128 --budget $BUDGET > $R/bench_train_gans.txt 2>&1
echo "train bench done $(( $(date +%s) - t0 )) s"
timeout 60 python3 - > $R/bench_inception.txt 2>&1 <<'PY'
# images/s of an InceptionV3 forward pass at 299 px (random weights: same cost as the real FID net,
# whose 84 MB weights cannot travel to this machine)
import time, torch, torchvision
dev = "cuda" if torch.cuda.is_available() else "cpu"
m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval().to(dev)
for bs in (200,):
    x = torch.rand(bs, 3, 299, 299, device=dev)
    with torch.no_grad():
        for _ in range(2): m(x)
        if dev == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); n = 0
        while time.perf_counter() - t < 5:
            m(x); n += bs
        if dev == "cuda": torch.cuda.synchronize()
    print(f"{dev} inception_v3 fp32 batch {bs}: {n / (time.perf_counter() - t):.0f} images/s")
PY
echo "inception bench done $(( $(date +%s) - t0 )) s"
# --- studies, in parallel ---
S13=baseline,N.1.3,N.1.5,N.1.7,N.3.5,Z.1.3,Z.1.5,Z.1.7,Z.3.5,B.1.3,B.1.5,B.1.7,B.3.5
D=dzanic+-svm,dzanic+-mlp,durall+-lr,durall-lr,robust,frank-lr,periodic-lr
DB=dzanic+-svm,dzanic+-mlp,durall+-lr,durall-lr,robust
C="python3 -m forensics counterexample --real builtin --gan dcgan --size 32 --steps $STEPS --seed 0 --reps ${REPS:-5} --n-train ${NTRAIN:-100} --device $DEV"
export OMP_NUM_THREADS=3
timeout $TMAX $C --setups $S13 --n-fake $NA --detectors $D --out $W/A > $R/A.log 2>&1 &
for o in infomax ssgan-ms dag; do
  timeout $TMAX $C --setups baseline,N.1.5,B.1.5 --objectives dcgan,$o --n-fake $NB --detectors $DB --out $W/B-$o > $R/B-$o.log 2>&1 &
done
timeout $TMAX $C --setups baseline,N.1.5,B.1.5 --quant none,w4a4 --n-fake $NB --detectors $DB --out $W/C > $R/C.log 2>&1 &
wait
echo "studies done $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.used --format=csv >> $R/machine.txt 2>&1
# --- pack: results (small files) and the fakes, in <= 15 MiB pieces ---
for s in A B-infomax B-ssgan-ms B-dag C; do
  mkdir -p $R/$s; cp $W/$s/*.json $W/$s/*.md $W/$s/*.html $W/$s/*.png $R/$s/ 2>/dev/null
  ls $W/$s/runs $W/$s/fakes > $R/$s/ls.txt 2>&1
  for r in $W/$s/runs/*; do [ -d "$r" ] && { mkdir -p $R/$s/runs/$(basename $r); cp $r/*.json $r/log.csv $R/$s/runs/$(basename $r)/ 2>/dev/null; }; done
done
(cd $W && tar czf $OUT/results.tgz results)
# fakes: A all setups; B/C the non-dcgan / quantized sources only
(cd $W && tar cf - $(ls -d A/fakes 2>/dev/null) $(for d in B-*/fakes/* C/fakes/*; do [ -d "$d/baseline" ] && echo $d; done) ) | split -b 15M - $OUT/fakes.tar.
ls -la $OUT; echo "all done $(( $(date +%s) - t0 )) s"
