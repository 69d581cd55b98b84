/**
 * The dashboard page served at `/`: one self-contained HTML document (no build step, nothing
 * fetched from elsewhere) that polls `/status` every 1.5 s and draws, with plain `<canvas>`, one
 * curve per peer of the reconstruction error, the fine-tuning loss and the validation accuracy;
 * the peers table (divergence, traffic, last heard); refusals; and the model's current filters and
 * samples. Each canvas carries `data-points` (points drawn) and `data-series` (curves drawn) for tests.
 */

const STYLE = `
body{font:14px system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{background:#fff;border:1px solid #ddd;padding:6px}
.chart b{display:block;font-size:13px;margin-bottom:4px} canvas{display:block}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0} td:first-child,th:first-child{text-align:left}
.warn{color:#b00;font-weight:bold} #legend span{margin-right:14px} .pics img{image-rendering:pixelated;border:1px solid #ddd;margin-right:12px;max-width:420px}
#meta{color:#555}
`;

const SCRIPT = `
const COLORS=['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#17becf'];
const fmt=(v,d=4)=>v===null||v===undefined?'–':Number.isInteger(v)?String(v):(Math.abs(v)>=1e5||(v!==0&&Math.abs(v)<1e-3)?v.toExponential(2):(+v).toFixed(d));
const bytes=(n)=>n>=1048576?(n/1048576).toFixed(1)+' MiB':n>=1024?(n/1024).toFixed(1)+' KiB':n+' B';
function draw(canvas,series){
  const ctx=canvas.getContext('2d'),W=canvas.width,H=canvas.height,P=36;
  ctx.clearRect(0,0,W,H);ctx.fillStyle='#fff';ctx.fillRect(0,0,W,H);
  const keys=[...new Set(series.flatMap(s=>s.points.map(p=>p.key)))].sort((a,b)=>a-b);
  const ys=series.flatMap(s=>s.points.map(p=>p.y));
  canvas.dataset.points=String(ys.length);canvas.dataset.series=String(series.filter(s=>s.points.length>0).length);
  ctx.strokeStyle='#999';ctx.beginPath();ctx.moveTo(P,4);ctx.lineTo(P,H-P/2);ctx.lineTo(W-4,H-P/2);ctx.stroke();
  if(ys.length===0){ctx.fillStyle='#999';ctx.fillText('no epochs yet',P+10,H/2);return;}
  let lo=Math.min(...ys),hi=Math.max(...ys);if(hi===lo){hi+=Math.abs(hi)*0.05+1e-6;lo-=Math.abs(lo)*0.05+1e-6;}
  const x=(k)=>P+(keys.length===1?0.5:keys.indexOf(k)/(keys.length-1))*(W-P-10);
  const y=(v)=>4+(1-(v-lo)/(hi-lo))*(H-P/2-8);
  ctx.fillStyle='#555';ctx.font='10px sans-serif';ctx.fillText(fmt(hi,3),2,12);ctx.fillText(fmt(lo,3),2,H-P/2);
  ctx.fillText('epochs ('+keys.length+')',W/2-20,H-4);
  series.forEach((s)=>{ctx.strokeStyle=s.color;ctx.fillStyle=s.color;ctx.lineWidth=s.self?2.5:1.5;ctx.setLineDash(s.self?[]:[5,3]);ctx.beginPath();
    s.points.forEach((p,i)=>{i===0?ctx.moveTo(x(p.key),y(p.y)):ctx.lineTo(x(p.key),y(p.y));});ctx.stroke();
    s.points.forEach((p)=>{ctx.beginPath();ctx.arc(x(p.key),y(p.y),2.5,0,7);ctx.fill();});});
  ctx.setLineDash([]);
}
function seriesOf(all,pick){return all.map(s=>({...s,points:s.history.flatMap(p=>{const v=pick(p);return v===undefined?[]:[{key:p.stage*100000+p.epoch,y:v}];})}));}
function cell(tr,text,cls){const td=document.createElement('td');td.textContent=text;if(cls)td.className=cls;tr.appendChild(td);}
function render(st){
  const s=st.self;
  document.getElementById('title').textContent='dbn-node · '+s.name+(s.id?' ('+s.id.slice(0,8)+')':'');
  document.getElementById('meta').textContent=s.mode+' · '+s.phase+' · stage '+s.stage+' · epoch '+s.epoch+' · round '+s.round+' · view '+s.view+' · '+s.members+' member(s) · recon '+fmt(s.reconstructionError)+' · loss '+fmt(s.loss)+' · val acc '+fmt(s.validationAccuracy)+' · up '+s.uptimeSeconds.toFixed(0)+' s';
  const all=[{name:s.name,self:true,history:s.history},...st.peers.map(p=>({name:p.name,self:false,history:p.history}))].map((x,i)=>({...x,color:COLORS[i%COLORS.length]}));
  document.getElementById('legend').innerHTML='';
  all.forEach(a=>{const sp=document.createElement('span');sp.style.color=a.color;sp.textContent=(a.self?'━ ':'╌ ')+a.name;document.getElementById('legend').appendChild(sp);});
  draw(document.getElementById('recon'),seriesOf(all,p=>p.phase==='pretrain'?p.value:undefined));
  draw(document.getElementById('loss'),seriesOf(all,p=>p.phase==='finetune'?p.value:undefined));
  draw(document.getElementById('acc'),seriesOf(all,p=>p.phase==='finetune'?p.accuracy:undefined));
  const body=document.querySelector('#peers tbody');body.innerHTML='';
  for(const p of st.peers){const tr=document.createElement('tr');
    cell(tr,p.name);cell(tr,p.id.slice(0,8));cell(tr,p.endpoint??'?');cell(tr,p.member?'yes':'no',p.member?'':'warn');
    cell(tr,p.lastHeardSecondsAgo===null?'–':p.lastHeardSecondsAgo.toFixed(1)+' s');cell(tr,String(p.stage));cell(tr,String(p.epoch));cell(tr,String(p.round));
    cell(tr,p.divergence===null?'–':fmt(p.divergence),p.divergence>0?'warn':'');cell(tr,bytes(p.sentBytes));cell(tr,bytes(p.receivedBytes));body.appendChild(tr);}
  const r=st.run,ref=Object.entries(r.refusals).filter(([,n])=>n>0).map(([k,n])=>k+' '+n).join(', ')||'none';
  document.getElementById('run').textContent='rounds '+r.rounds+' · waited at barriers '+r.barrierWaitSeconds.toFixed(1)+' s · suspected '+r.suspects+' · admitted '+r.joins+' · snapshots served '+r.snapshotsServed+' / taken '+r.snapshotsTaken+' · refused: '+ref;
  document.getElementById('run').className=r.suspects>0||ref!=='none'?'warn':'';
  document.body.dataset.updated=String(Date.now());
}
let picturesAt=0;
async function poll(){
  try{const res=await fetch('status',{cache:'no-store'});render(await res.json());document.getElementById('err').textContent='';}
  catch(e){document.getElementById('err').textContent='cannot reach this peer: '+e;}
  if(Date.now()-picturesAt>10000){picturesAt=Date.now();for(const id of ['filters','samples']){const img=document.getElementById(id);img.src=id+'.png?t='+picturesAt;}}
  setTimeout(poll,1500);
}
poll();
`;

/** The dashboard document. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dbn-node</title><style>${STYLE}</style></head>
<body>
<h1 id="title">dbn-node</h1><div id="meta">loading…</div><div id="err" class="warn"></div>
<h2>Training curves</h2><div id="legend"></div><div id="meta2" style="color:#777;font-size:12px">Peers in step report the same summed figures, so their curves coincide.</div>
<div class="charts">
<div class="chart"><b>reconstruction error (pretraining)</b><canvas id="recon" width="380" height="200"></canvas></div>
<div class="chart"><b>fine-tuning loss</b><canvas id="loss" width="380" height="200"></canvas></div>
<div class="chart"><b>validation accuracy</b><canvas id="acc" width="380" height="200"></canvas></div>
</div>
<h2>Peers</h2>
<table id="peers"><thead><tr><th>name</th><th>id</th><th>endpoint</th><th>member</th><th>last heard</th><th>stage</th><th>epoch</th><th>round</th><th>divergence</th><th>sent</th><th>received</th></tr></thead><tbody></tbody></table>
<p id="run"></p>
<h2>Model</h2>
<div class="pics"><img id="filters" alt="first-layer filters (none yet)"><img id="samples" alt="samples (none yet)"></div>
<script>${SCRIPT}</script>
</body></html>
`;
