# queue 18: row 44's fine-tuning from queue 17's 200-epoch layer (the authors' code's defaults)
set -x
T="env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1lr0.001e200--b20lr0.3e60 --init search/weights/p_l0.1_lr0.001_e200.npz --lr 0.3 --epochs 60
