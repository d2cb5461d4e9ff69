"""search/results.tsv as a Markdown table (search/results.md)."""
import csv

rows = list(csv.DictReader(open('search/results.tsv'), delimiter='\t'))
out = ['| # | phase | tag | settings | best valid % | best epoch | epochs | '
       'wall s | s/epoch | cores | notes |', '|' + '---|' * 11]
for i, r in enumerate(rows, 1):
    extra = r['extra']
    if 'curve' in extra:  # keep the table readable: the curve is in the tsv
        extra = extra.split(';')[0]
    out.append('| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |'
               % (i, r['phase'], r['tag'], r['settings'], r['best_valid_%'],
                  r['best_epoch'], r['epochs_run'], r['wall_s'],
                  r['s_per_epoch'], r['cores'], extra))
open('search/results.md', 'w').write('\n'.join(out) + '\n')
print('\n'.join(out))
