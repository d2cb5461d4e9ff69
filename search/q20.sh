# queue 20 (both cores, two threads): our pre-training (lambda 0.1, step 0.05) continued
# from 60 to 120 epochs, then row 44's fine-tuning from it (one thread)
set -x
env OMP_NUM_THREADS=2 .venv/bin/python search/tune.py pretrain --tag p_l0.1_lr0.05 --lam 0.1 --lr 0.05 --batch 10 --init search/weights/p_l0.1_lr0.05_e60.npz --save-at 120
env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py finetune --tag f_l0.1e120--b20lr0.3e60 --init search/weights/p_l0.1_lr0.05_e120.npz --lr 0.3 --epochs 60
