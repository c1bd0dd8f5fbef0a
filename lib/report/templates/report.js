(function(){
  function key(td){var v=td.getAttribute('data-v');var t=(v!==null&&v!=='')?v:td.textContent.trim();
    var f=parseFloat(t);return isNaN(f)?t:f;}
  document.querySelectorAll('table.sortable').forEach(function(tbl){
    var ths=tbl.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,i){th.addEventListener('click',function(){
      var asc=th.getAttribute('data-dir')!=='asc';
      Array.prototype.forEach.call(ths,function(o){o.removeAttribute('data-dir');});
      th.setAttribute('data-dir',asc?'asc':'desc');
      var body=tbl.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
        var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
        if(isNaN(c))c=isNaN(x)?1:-1;return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });});
  });
  var dataEl=document.getElementById('paro-data');if(!dataEl)return;
  var D=JSON.parse(dataEl.textContent);var tip=document.getElementById('tip');
  function fmt(x){return (x===null||x===undefined)?'n/a':Number(x).toFixed(4);}
  document.querySelectorAll('img.hm').forEach(function(img){
    img.addEventListener('mousemove',function(e){
      var r=img.getBoundingClientRect();
      var h=Math.floor((e.clientX-r.left)/r.width*D.max_heads),l=Math.floor((e.clientY-r.top)/r.height*D.layers.length);
      var L=D.layers[l];if(!L||!L[h]){tip.style.display='none';return;}
      var x=L[h];var s='layer '+l+'  head '+h+'\norder '+D.orders[x.o];
      var slot=img.getAttribute('data-slot');
      if(slot!==null){s+='\ndensity '+fmt(x.d[slot])+'  recall '+fmt(x.r[slot]);}
      else{s+='\ndensity '+x.d.map(fmt).join(' ')+'\nrecall '+x.r.map(fmt).join(' ');}
      if(x.a!==null)s+='\nsamples agreeing '+fmt(x.a)+'  min sample recall '+fmt(x.m);
      tip.textContent=s;tip.style.display='block';tip.style.left=(e.clientX+14)+'px';tip.style.top=(e.clientY+14)+'px';
    });
    img.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
})();
