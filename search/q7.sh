set -x
R=search/run.sh
W=search/weights
$R finetune --tag f_cae0.03_lr0.05--lr0.3_shuf2 --init $W/cae0.03_lr0.05_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 2
$R pretrain --tag p_cae0.03_lr0.05_b10_e21-40 --init $W/cae0.03_lr0.05_b10.npz --lam 0.03 --lr 0.05 --batch 10 --epochs 20 --shuffle-seed 2 --out $W/cae0.03_lr0.05_b10_e40.npz
$R finetune --tag f_cae0.03_lr0.05_e40--lr0.3 --init $W/cae0.03_lr0.05_b10_e40.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 1
$R pretrain --tag p_cae0.05_lr0.05_b10 --lam 0.05 --lr 0.05 --batch 10 --epochs 20 --shuffle-seed 1 --save-at 10 --out $W/cae0.05_lr0.05_b10.npz
$R finetune --tag f_cae0.05_lr0.05_b10--lr0.3 --init $W/cae0.05_lr0.05_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 1
