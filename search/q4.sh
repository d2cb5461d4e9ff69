set -x
R=search/run.sh
W=search/weights
I=$W/cae0.1_lr0.05_b10.npz
$R finetune --tag f_cae0.1_lr0.05--lr0.3lin --init $I --lr 0.3 --schedule linear --final 0 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag f_cae0.1_lr0.05--lr0.1 --init $I --lr 0.1 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag f_cae0.1_lr0.05--lr1lin --init $I --lr 1.0 --schedule linear --final 0 --batch 10 --epochs 30 --shuffle-seed 1
for cfg in "0 0.05" "0.03 0.05"; do
set -- $cfg
$R pretrain --tag p_cae$1_lr$2_b10 --lam $1 --lr $2 --batch 10 --epochs 20 --shuffle-seed 1 --save-at 10 --out $W/cae$1_lr$2_b10.npz
$R finetune --tag f_cae$1_lr$2_b10--lr0.3 --init $W/cae$1_lr$2_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 1
done
