set -x
# fine-tuning seed spread (data order only; same pre-trained weights), validation only
R=search/run.sh
W=search/weights
for s in 2 3; do
$R finetune --tag r_b10_lr0.3_c_shuf$s --lr 0.3 --batch 10 --epochs 30 --shuffle-seed $s
$R finetune --tag f_cae0_lr0.05_b10--lr0.3_shuf$s --init $W/cae0_lr0.05_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed $s
done
$R finetune --tag f_cae0.03_lr0.05--lr0.3_shuf3 --init $W/cae0.03_lr0.05_b10.npz --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 3
