set -x
R=search/run.sh
W=search/weights
$R pretrain --tag p_cae0.1_lr0.01_b10 --lam 0.1 --lr 0.01 --batch 10 --epochs 30 --shuffle-seed 1 --save-at 10 20 --out $W/cae0.1_lr0.01_b10.npz
for e in _e10 _e20 ""; do
$R finetune --tag f_cae0.1_lr0.01_b10$e--lr0.1 --init $W/cae0.1_lr0.01_b10$e.npz --lr 0.1 --batch 10 --epochs 30 --shuffle-seed 1
done
$R finetune --tag f_cae0.1_lr0.01_b10--lr0.3 --init $W/cae0.1_lr0.01_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 1
