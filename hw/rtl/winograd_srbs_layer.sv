// winograd_srbs_layer -- the WinogradSRBS streaming layer: a 3x3 stride-1
// convolution by Winograd F(m x m, 3 x 3) (m in {2, 4}, t = m + 2) on
// Winograd-domain, sub-row-balanced sparse (SRBS) weights, exactly the integer
// result of winoforge.hw.winograd_op.winograd_srbs_reference.
//
// Streams (AXI-stream valid/ready, back-pressure on both sides, FINN's order):
//   in : NHWC, one beat = ISIMD channels of one pixel (folded shape
//        (H, W, CIN/ISIMD, ISIMD)), lane c at in_tdata[c*IN_W +: IN_W];
//   out: NHWC (HO x WO, cropped where HO or WO is not a multiple of M), one beat
//        = OE channels of one pixel, lane e at out_tdata[e*OUT_W +: OUT_W]
//        (two's complement modulo 2^OUT_W: the low OUT_W bits of the result).
//
// Datapath (one frame after another, frames overlap):
//   line buffer  T+M row banks of W*SFI words (SFI = CIN/ISIMD); a row enters a
//                free bank, a tile band releases the rows the next band does
//                not need.  The layer pads itself (PAD rows/columns of zeros;
//                tiles past the bottom/right edge read zeros as well).
//   window       per tile and input sub-fold: T column reads (one word from each
//                of T row banks), one a cycle.  The input side (line buffer,
//                window, input transform, V writes) is ISIMD channels wide, a
//                divisor of SIMD: KS = SIMD/ISIMD sub-folds fill one SIMD-wide
//                input fold of V.  It needs T*SFI cycles a tile where the PE
//                array takes (T*T/POS)*CF*SF, so a layer whose PE work per tile
//                is long (many output folds) takes the narrow input side for free
//                -- SRBS at Keep/SubRow density reads SubRow/Keep times the
//                channels per multiplier that a dense layer does.
//   input tf     per ISIMD lane two serial 1-D B^T units (winograd_transform_1d):
//                the column unit turns each window column into a column of
//                Z = B^T d, the row unit turns the T rows of Z into the rows of
//                V = Z B, one a cycle, while the next fold's columns arrive.
//   V buffer     NVB slots (tiles k, k+1[, k+2]) in NB = max(T, POS) banks
//                (position xi in bank xi % NB) of NVB*SF*ceil(T*T/NB) words of
//                SIMD*V_W bits (KS sub-memories of ISIMD*V_W bits, one per
//                sub-fold).  NVB = 3 lets the window stage run two tiles
//                ahead where a tile's PE work is shorter than its T*SFI window
//                reads plus the pipeline.
//   PE array     per tile: output fold f (CF = ceil(COUT/PE); where PE does not
//                divide COUT the last fold's padding channels have zero weights
//                and are not written out) -> position group g
//                (G = ceil(T*T/POS); where POS does not divide T*T the last
//                group's lanes past position T*T-1 get zero weights and their
//                sums are dropped) -> input fold s (innermost), one step a cycle;
//                POS x PE srbs_dot units (multipliers '*' or, MUL_LUT = 1,
//                shift-and-add), weights from the ROM read with
//                $readmemh(VALUES_FILE / INDICES_FILE) (the files of
//                WinogradSRBS_rtl.generate_hdl: line = all POS banks of one
//                address), accumulation over the SF input folds.
//   M collector  the T*T accumulators of PE channels, handed over as one tile.
//   output tf    OTF_SERIAL = 1: per PE one serial 1-D A^T unit, T + M steps a
//                tile and output fold (rows of M -> Z' = M A, then columns of
//                Z' -> columns of Y = A^T Z'); 0: PE parallel 2-D transforms
//                (winograd_output_transform), one fold a cycle.
//   output buf   two tile bands (M rows x WO x COUT), banks (i, j, e):
//                written by tiles (M*M*PE values; column by column when
//                serial), read as NHWC beats of OE.  OE >= PE: OE banks per
//                (i, j), bank e holding channel e of each beat (OE > PE: the
//                PE channels of a fold rotate into the beats on the write
//                side).  OE < PE (a PE that does not divide COUT, the beat
//                the largest divisor of COUT below it): PE banks per (i, j),
//                bank p holding lane p of each output fold, and the OE
//                channels of a beat -- from OE distinct lanes, each at its own
//                fold -- rotate into place on the read side: a PE:1 select per
//                beat channel instead of one per bank and position.
//
// Widths (winoforge.hw.rtl.winograd_layer.layer_parameters): every stage
// computes modulo 2^width, so capping each at OUT_W is exact whenever the
// output fits OUT_W bits.  Plain synthesizable SystemVerilog, no vendor
// primitives; every counter and address has the width of its range; every
// memory has one write and one synchronous read port and no reset on its data.

module winograd_srbs_layer #(
    parameter int M         = 2,
    parameter int H         = 8,
    parameter int W         = 8,
    parameter int CIN       = 4,
    parameter int COUT      = 4,
    parameter int PAD       = 1,
    parameter int SIMD      = 4,
    parameter int ISIMD     = SIMD,  // input-side channels a cycle: a divisor of SIMD
    parameter int PE        = 2,
    parameter int POS       = 1,
    parameter int SUBROW    = 1,   // 1 with KEEP = 1: dense (no index memory)
    parameter int KEEP      = 1,
    parameter int IN_W      = 4,
    parameter int IN_SIGNED = 0,
    parameter int W_W       = 4,
    parameter int W_SIGNED  = 1,
    parameter int IDX_W     = 1,
    parameter int HAS_IDX   = 0,
    parameter int VMID_W    = 8,   // input transform: Z = B^T d
    parameter int V_W       = 8,   // V
    parameter int PROD_W    = 12,
    parameter int SUM_W     = 14,
    parameter int ACC_W     = 16,
    parameter int OMID_W    = 18,  // output transform: M A
    parameter int OUT_W     = 18,
    parameter int OE        = 2,   // output channels per beat (a divisor of COUT; below PE only where
                                   //    PE does not divide COUT)
    parameter int NVB       = 2,   // V buffer slots: 2, or 3 where the window stage is the bottleneck
    parameter int MUL_LUT   = 0,   // 1: multipliers in LUTs (shift-and-add), 0: '*' (DSPs)
    parameter int OTF_SERIAL = 1,  // 1: one serial 1-D A^T unit per PE (T + M cycles a tile and output
                                   //    fold: needs (T*T/POS)*(CIN/SIMD) >= T + M); 0: parallel 2-D
    parameter     VALUES_FILE  = "",  // $readmemh files (the wrapper names them)
    parameter     INDICES_FILE = "",
    parameter int RUNTIME_W = 0,   // 1: weights written at run time through the w_* stream, not $readmemh
    parameter int LOAD_W    = 64,  // RUNTIME_W: bits of one weight-stream word
    parameter int URAM      = 0,   // RUNTIME_W: the weight memory in UltraRAM (no initial contents there)
    parameter int ROM_BLOCK = 0,   // not RUNTIME_W: the weight and index ROMs in block RAM (else as synthesis maps them)
    parameter int ROM_PIPE  = 0    // not RUNTIME_W: the ROMs read one issue ahead, their line registered twice (ROMs in
                                   //    block RAM: winoforge.hw.rtl.winograd_layer.layer_parameters)
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic                     in_tvalid,
    output logic                     in_tready,
    input  logic [ISIMD * IN_W - 1:0] in_tdata,
    output logic                     out_tvalid,
    input  logic                     out_tready,
    output logic [OE * OUT_W - 1:0]  out_tdata,
    // weight stream (RUNTIME_W = 1; unused, w_tready low, otherwise): the memory's lines in
    // address order, each as NCOL words of LOAD_W bits, least significant first (line = the
    // NE values, then the NE indices, winoforge.hw.srbs_codegen.weight_stream_words)
    input  logic                     w_tvalid,
    output logic                     w_tready,
    input  logic [LOAD_W - 1:0]      w_tdata
);
    localparam int T      = M + 2;
    localparam int T2     = T * T;
    localparam int ROWS   = T + M;
    localparam int SF     = CIN / SIMD;
    localparam int SFI    = CIN / ISIMD;  // input sub-folds: KS per input fold
    localparam int KS     = SIMD / ISIMD;
    localparam int CF     = (COUT + PE - 1) / PE;  // output folds; the last padded where PE does not divide COUT
    localparam int LASTN  = COUT - (CF - 1) * PE;  // channels of the last output fold that are written
    localparam int G      = (T2 + POS - 1) / POS;  // position groups; the last one's lanes past T2 idle
    localparam int HO     = H + 2 * PAD - 2;
    localparam int WO     = W + 2 * PAD - 2;
    localparam int TH     = (HO + M - 1) / M;
    localparam int TW     = (WO + M - 1) / M;
    localparam int LB_D   = W * SFI;
    localparam int LANES  = SIMD / SUBROW * KEEP;
    localparam int NE     = POS * PE * LANES;
    localparam int WDEPTH = G * CF * SF;
    localparam int OBEATS = COUT / OE;
    localparam bit OB_LANES = (OE < PE);             // output buffer banks by PE lane, rotated on reading
    localparam int OB_NB  = OB_LANES ? PE : OE;      // output buffer banks per output position (i, j)
    localparam int OB_PIX = OB_LANES ? CF : OBEATS;  // words per pixel column in each bank
    localparam int OB_D   = 2 * TW * OB_PIX;
    localparam int WIN    = ISIMD * IN_W;
    localparam int VWORD  = SIMD * V_W;
    localparam int IVWORD = ISIMD * V_W;  // one sub-fold of a V word
    localparam int LAST_ROWS = HO - (TH - 1) * M;  // output rows of the last tile band
    // counter and address widths: each holds exactly its range
    localparam int LB_AW  = (LB_D > 1) ? $clog2(LB_D) : 1;
    localparam int ROW_AW = $clog2(ROWS);
    localparam int CNT_W  = $clog2(ROWS + 1);      // rows held, rows released
    localparam int XY_W   = $clog2(H + W + 2 * T + 2 * PAD + 2) + 1;  // signed pixel coordinates
    localparam int TR_W   = (TH > 1) ? $clog2(TH) : 1;
    localparam int TC_W   = (TW > 1) ? $clog2(TW) : 1;
    localparam int SF_W   = (SF > 1) ? $clog2(SF) : 1;
    localparam int SFI_W  = (SFI > 1) ? $clog2(SFI) : 1;
    localparam int KS_W   = (KS > 1) ? $clog2(KS) : 1;
    localparam int CF_W   = (CF > 1) ? $clog2(CF) : 1;
    localparam int G_W    = (G > 1) ? $clog2(G) : 1;
    localparam int T_W    = $clog2(T);
    localparam int M_W    = (M > 1) ? $clog2(M) : 1;
    localparam int NB     = (POS > T) ? POS : T;  // V buffer banks
    localparam int QN     = (T2 + NB - 1) / NB;   // positions per bank and fold (at most)
    localparam int VB_D   = NVB * SF * QN;
    localparam int VB_AW  = (VB_D > 1) ? $clog2(VB_D) : 1;
    localparam int Q_W    = (QN > 1) ? $clog2(QN) : 1;
    localparam int VS_W   = 2;  // slot index width
    localparam int W_AW   = (WDEPTH > 1) ? $clog2(WDEPTH) : 1;
    localparam int OB_AW  = (OB_D > 1) ? $clog2(OB_D) : 1;
    localparam int OBT_W  = (OBEATS > 1) ? $clog2(OBEATS) : 1;
    localparam int WO_W   = (WO > 1) ? $clog2(WO) : 1;
    localparam int OE_W   = $clog2(2 * OE + 1);  // lanes, and lanes + PE
    localparam int PE_W   = $clog2(2 * PE + 1);  // a PE lane, and a lane + OE (OB_LANES)
    localparam int SQ_W   = $clog2(T + M);

    // ------------------------------------------------------------------ line buffer
    logic [CNT_W - 1:0] lb_count;  // complete rows held
    logic [LB_AW - 1:0] wr_beat;   // beat within the row being written
    logic [ROW_AW - 1:0] wr_bank;
    logic [ROW_AW - 1:0] lb_base;  // bank of the oldest row held
    logic [CNT_W - 1:0] rel_rows;  // rows released this cycle (window stage)
    logic in_fire, row_done;

    assign in_tready = (wr_beat != '0) || (lb_count < CNT_W'(ROWS));
    assign in_fire   = in_tvalid && in_tready;
    assign row_done  = in_fire && (wr_beat == LB_AW'(LB_D - 1));

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wr_beat  <= '0;
            wr_bank  <= '0;
            lb_count <= '0;
        end else begin
            if (in_fire) wr_beat <= row_done ? '0 : wr_beat + 1'b1;
            if (row_done) wr_bank <= (wr_bank == ROW_AW'(ROWS - 1)) ? '0 : wr_bank + 1'b1;
            lb_count <= lb_count + CNT_W'(row_done) - rel_rows;
        end
    end

    logic [LB_AW - 1:0] lb_raddr;
    logic [WIN - 1:0]   lb_rd [ROWS];
    for (genvar r = 0; r < ROWS; r++) begin : g_lb
        logic [WIN - 1:0] mem [LB_D];
        always_ff @(posedge ap_clk) begin
            if (in_fire && wr_bank == ROW_AW'(r)) mem[wr_beat] <= in_tdata;
            lb_rd[r] <= mem[lb_raddr];
        end
    end

    // ------------------------------------------------------------------ window stage
    // one column of the t x t window of one input fold a cycle (T row banks read at once)
    logic [TR_W - 1:0] w_tr;
    logic [TC_W - 1:0] w_tc;
    logic [SFI_W - 1:0] w_s;   // input sub-fold
    logic [SF_W - 1:0]  w_sf;  // its input fold (w_s / KS) and sub-fold within it (w_s % KS)
    logic [KS_W - 1:0]  w_k;
    logic [T_W - 1:0]  w_col;
    logic signed [XY_W - 1:0] w_y0, w_x0;  // top-left input pixel of the tile (may be padding)
    logic [VS_W - 1:0] w_half;   // V buffer slot being written
    logic [(1 << VS_W) - 1:0] vfull;  // V buffer slots holding a complete tile (NVB used)
    logic signed [XY_W - 1:0] ylo, yhi, ylo_next, x0;
    logic [CNT_W - 1:0] need, toppad;
    logic band_ok, w_issue, w_last_tile, w_last_band_step;
    logic [T - 1:0] row_ok;
    logic col_ok;
    logic [ROW_AW - 1:0] rot;
    logic [CNT_W:0] base_sum;  // lb_base + rel_rows
    assign base_sum = (CNT_W + 1)'(lb_base) + (CNT_W + 1)'(rel_rows);

    always_comb begin
        ylo      = (w_y0 > 0) ? w_y0 : '0;
        yhi      = (w_y0 + XY_W'(T - 1) < XY_W'(H - 1)) ? w_y0 + XY_W'(T - 1) : XY_W'(H - 1);
        need     = (yhi >= ylo) ? CNT_W'(yhi - ylo + 1'b1) : '0;
        ylo_next = (w_y0 + XY_W'(M) > 0) ? w_y0 + XY_W'(M) : '0;
        toppad   = (w_y0 < 0) ? CNT_W'(-w_y0) : '0;  // padding rows above the tile (<= PAD <= T)
        band_ok  = lb_count >= need;
        w_issue  = band_ok && !vfull[w_half];
        x0       = w_x0 + XY_W'(w_col);
        col_ok   = (x0 >= 0) && (x0 < XY_W'(W));
        lb_raddr = col_ok ? LB_AW'(LB_AW'(x0) * LB_AW'(SFI)) + LB_AW'(w_s) : '0;
        for (int k = 0; k < T; k++) row_ok[k] = (w_y0 + XY_W'(k) >= 0) && (w_y0 + XY_W'(k) < XY_W'(H));
        // bank of window row k = (lb_base + k - toppad) mod ROWS, for valid rows
        rot = (lb_base >= ROW_AW'(toppad)) ? lb_base - ROW_AW'(toppad)
                                           : ROW_AW'((CNT_W + 1)'(lb_base) + (CNT_W + 1)'(ROWS) - (CNT_W + 1)'(toppad));
        w_last_tile      = (w_s == SFI_W'(SFI - 1)) && (w_col == T_W'(T - 1));
        w_last_band_step = w_last_tile && (w_tc == TC_W'(TW - 1));
        rel_rows = '0;
        if (w_issue && w_last_band_step)
            rel_rows = CNT_W'((w_tr == TR_W'(TH - 1)) ? XY_W'(H) - ylo : ylo_next - ylo);
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            w_tr <= '0; w_tc <= '0; w_s <= '0; w_col <= '0; w_half <= '0; lb_base <= '0;
            w_y0 <= -XY_W'(PAD); w_x0 <= -XY_W'(PAD);
        end else if (w_issue) begin
            if (rel_rows != '0) lb_base <= (base_sum >= (CNT_W + 1)'(ROWS)) ? ROW_AW'(base_sum - (CNT_W + 1)'(ROWS))
                                                                            : ROW_AW'(base_sum);
            if (w_col != T_W'(T - 1)) w_col <= w_col + 1'b1;
            else begin
                w_col <= '0;
                if (w_s != SFI_W'(SFI - 1)) w_s <= w_s + 1'b1;
                else begin
                    w_s <= '0;
                    w_half <= (w_half == VS_W'(NVB - 1)) ? '0 : w_half + 1'b1;
                    if (w_tc != TC_W'(TW - 1)) begin
                        w_tc <= w_tc + 1'b1;
                        w_x0 <= w_x0 + XY_W'(M);
                    end else begin
                        w_tc <= '0;
                        w_x0 <= -XY_W'(PAD);
                        w_tr <= (w_tr == TR_W'(TH - 1)) ? '0 : w_tr + 1'b1;
                        w_y0 <= (w_tr == TR_W'(TH - 1)) ? -XY_W'(PAD) : w_y0 + XY_W'(M);
                    end
                end
            end
        end
    end

    if (KS == 1) begin : g_ks1
        assign w_sf = SF_W'(w_s);
        assign w_k  = '0;
    end else begin : g_ks
        logic [SF_W - 1:0] sf_q;
        logic [KS_W - 1:0] k_q;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                sf_q <= '0; k_q <= '0;
            end else if (w_issue && w_col == T_W'(T - 1)) begin
                if (w_s == SFI_W'(SFI - 1)) begin
                    sf_q <= '0; k_q <= '0;
                end else if (k_q == KS_W'(KS - 1)) begin
                    k_q <= '0; sf_q <= sf_q + 1'b1;
                end else k_q <= k_q + 1'b1;
            end
        end
        assign w_sf = sf_q;
        assign w_k  = k_q;
    end

    // stage A: line-buffer words arrive
    logic a_valid, a_last, a_col_ok, a_tile_end;
    logic [VS_W - 1:0] a_half;
    logic [SF_W - 1:0] a_s;
    logic [KS_W - 1:0] a_k;
    logic [T - 1:0] a_row_ok;
    logic [ROW_AW - 1:0] a_rot;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) a_valid <= 1'b0;
        else a_valid <= w_issue;
        a_tile_end <= w_col == T_W'(T - 1);
        a_s <= w_sf; a_k <= w_k; a_half <= w_half; a_last <= w_last_tile && w_issue;
        a_row_ok <= row_ok; a_col_ok <= col_ok; a_rot <= rot;
    end
    logic [WIN - 1:0] col_val [T];
    for (genvar k = 0; k < T; k++) begin : g_colk
        logic [ROW_AW:0] bank_sum;
        logic [ROW_AW - 1:0] bank;
        assign bank_sum = {1'b0, a_rot} + (ROW_AW + 1)'(k);
        assign bank = (bank_sum >= (ROW_AW + 1)'(ROWS)) ? ROW_AW'(bank_sum - ROWS) : ROW_AW'(bank_sum);
        always_comb begin
            col_val[k] = '0;
            for (int r = 0; r < ROWS; r++)
                if (a_col_ok && a_row_ok[k] && bank == ROW_AW'(r)) col_val[k] = lb_rd[r];
        end
    end

    // ------------------------------------------------------------------ input transforms
    // Per ISIMD lane two serial 1-D B^T units: the column unit takes the window
    // column of this cycle (Z[:, col] = B^T d[:, col], held until the fold's last
    // column), the row unit turns the T rows of Z into the T rows of V = Z B, one a
    // cycle, while the column unit takes the next fold: T cycles a fold, the pace
    // of the window reads.
    logic tin_valid;  // last column of a fold: Z complete
    assign tin_valid = a_valid && a_tile_end;
    logic rp_valid, rp_last;  // row pass
    logic [T_W - 1:0]  rp_row;
    logic [SF_W - 1:0] rp_s;
    logic [KS_W - 1:0] rp_k;
    logic [VS_W - 1:0] rp_half;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) rp_valid <= 1'b0;
        else if (tin_valid) rp_valid <= 1'b1;
        else if (rp_row == T_W'(T - 1)) rp_valid <= 1'b0;
        if (tin_valid) begin
            rp_row <= '0; rp_s <= a_s; rp_k <= a_k; rp_half <= a_half; rp_last <= a_last;
        end else if (rp_valid) rp_row <= rp_row + 1'b1;
    end
    logic [T * V_W - 1:0] v_row [ISIMD];  // row rp_row of V (sub-fold rp_k), element j at [j*V_W]
    for (genvar c = 0; c < ISIMD; c++) begin : g_itf
        logic [T * IN_W - 1:0]  dcol;
        logic [T * VMID_W - 1:0] zcol;
        logic [T * VMID_W - 1:0] zrow;
        for (genvar k = 0; k < T; k++) begin : g_k
            assign dcol[k * IN_W +: IN_W] = col_val[k][c * IN_W +: IN_W];
        end
        winograd_transform_1d #(.M(M), .KIND(0), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .OUT_W(VMID_W)) u_col (
            .x(dcol), .y(zcol)
        );
        // zh: columns 0..T-2 of Z (shifted in); zr: the complete Z of the fold, loaded once
        // (clock enable only) and read a row a cycle by rp_row in the row pass -- a T:1 select
        // of T*VMID bits instead of a load/shift mux in front of each of its T*T*VMID bits
        logic [VMID_W - 1:0] zh [T][T - 1];
        logic [VMID_W - 1:0] zr [T][T];
        always_ff @(posedge ap_clk) begin
            if (a_valid) for (int i = 0; i < T; i++) begin
                for (int j = 0; j < T - 2; j++) zh[i][j] <= zh[i][j + 1];
                zh[i][T - 2] <= zcol[i * VMID_W +: VMID_W];
            end
            if (tin_valid) begin
                for (int i = 0; i < T; i++) begin
                    for (int j = 0; j < T - 1; j++) zr[i][j] <= zh[i][j];
                    zr[i][T - 1] <= zcol[i * VMID_W +: VMID_W];
                end
            end
        end
        always_comb begin  // row T-1 for rp_row >= T - 1 (codes past T - 1 are never read)
            for (int j = 0; j < T; j++) zrow[j * VMID_W +: VMID_W] = zr[T - 1][j];
            for (int i = 0; i < T - 1; i++)
                if (rp_row == T_W'(i)) for (int j = 0; j < T; j++) zrow[j * VMID_W +: VMID_W] = zr[i][j];
        end
        winograd_transform_1d #(.M(M), .KIND(0), .IN_W(VMID_W), .IN_SIGNED(1), .OUT_W(V_W)) u_row (
            .x(zrow), .y(v_row[c])
        );
    end

    // ------------------------------------------------------------------ V buffer
    // NB = max(T, POS) banks, position xi in bank xi % NB at slot xi / NB: a row of V
    // (T consecutive positions, written in one cycle) and a position group (POS
    // consecutive positions, read in one cycle) each touch distinct banks.
    logic [CF_W - 1:0] p_f;
    logic [G_W - 1:0]  p_g;
    logic [SF_W - 1:0] p_s;
    logic [VS_W - 1:0] p_half;
    logic p_issue, p_last, pipe_en;
    logic [VB_AW - 1:0] vb_rbase, vb_wbase;  // (slot * SF + fold) * QN
    logic [VWORD - 1:0] v_rd [NB];
    assign vb_rbase = (VB_AW'(p_half) * VB_AW'(SF) + VB_AW'(p_s)) * VB_AW'(QN);
    assign vb_wbase = (VB_AW'(rp_half) * VB_AW'(SF) + VB_AW'(rp_s)) * VB_AW'(QN);
    for (genvar b = 0; b < NB; b++) begin : g_vbuf
        logic                we;
        logic [Q_W - 1:0]    wq, rq;
        logic [IVWORD - 1:0] wdata;  // one sub-fold: lanes k*ISIMD .. of the V word
        always_comb begin
            // write data where no row writes this bank: the column of the first row that does
            // (don't care, we = 0), so that a bank every row writes at the same column needs no mux
            we = 1'b0; wq = '0; wdata = '0;
            for (int i = T - 1; i >= 0; i--)
                if ((b - (i * T) % NB + NB) % NB < T)
                    for (int c = 0; c < ISIMD; c++)
                        wdata[c * V_W +: V_W] = v_row[c][((b - (i * T) % NB + NB) % NB) * V_W +: V_W];
            for (int i = 0; i < T; i++) begin
                // column (b - i*T) mod NB of row i lies in this bank if it is < T
                if (rp_row == T_W'(i) && (b - (i * T) % NB + NB) % NB < T) begin
                    we = rp_valid;
                    wq = Q_W'((i * T + (b - (i * T) % NB + NB) % NB) / NB);
                    for (int c = 0; c < ISIMD; c++)
                        wdata[c * V_W +: V_W] = v_row[c][((b - (i * T) % NB + NB) % NB) * V_W +: V_W];
                end
            end
            rq = '0;
            for (int g = 0; g < G; g++)
                if (p_g == G_W'(g) && (b - (g * POS) % NB + NB) % NB < POS)
                    rq = Q_W'((g * POS + (b - (g * POS) % NB + NB) % NB) / NB);
        end
        for (genvar k = 0; k < KS; k++) begin : g_sub
            logic [IVWORD - 1:0] mem [VB_D];
            logic [IVWORD - 1:0] rd;
            always_ff @(posedge ap_clk) begin
                if (we && (KS == 1 || rp_k == KS_W'(k))) mem[vb_wbase + VB_AW'(wq)] <= wdata;
                if (pipe_en) rd <= mem[vb_rbase + VB_AW'(rq)];
            end
            assign v_rd[b][k * IVWORD +: IVWORD] = rd;
        end
    end
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) vfull <= '0;
        else for (int h = 0; h < NVB; h++) begin
            if (rp_valid && rp_last && rp_row == T_W'(T - 1) && rp_half == VS_W'(h)) vfull[h] <= 1'b1;
            else if (p_issue && p_last && p_half == VS_W'(h)) vfull[h] <= 1'b0;
        end
    end

    // ------------------------------------------------------------------ PE array
    logic dot_ready;
    logic d_valid, d_first, d_last;
    logic [G_W - 1:0] d_g;
    logic [W_AW - 1:0] w_raddr;  // (p_f * G + p_g) * SF + p_s: counts through the ROM once a tile
    logic w_loaded;  // the weight memory holds a complete set (always, for the ROM)
    assign pipe_en = !d_valid || dot_ready;
    assign p_issue = vfull[p_half] && pipe_en && w_loaded;
    assign p_last  = (p_f == CF_W'(CF - 1)) && (p_g == G_W'(G - 1)) && (p_s == SF_W'(SF - 1));
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            p_f <= '0; p_g <= '0; p_s <= '0; p_half <= '0; w_raddr <= '0;
        end else if (p_issue) begin
            w_raddr <= p_last ? '0 : w_raddr + 1'b1;
            if (p_s != SF_W'(SF - 1)) p_s <= p_s + 1'b1;
            else begin
                p_s <= '0;
                if (p_g != G_W'(G - 1)) p_g <= p_g + 1'b1;
                else begin
                    p_g <= '0;
                    if (p_f != CF_W'(CF - 1)) p_f <= p_f + 1'b1;
                    else begin
                        p_f <= '0;
                        p_half <= (p_half == VS_W'(NVB - 1)) ? '0 : p_half + 1'b1;
                    end
                end
            end
        end
    end

    // weight memory (synchronous read)
    logic [NE * W_W - 1:0]   d_w;
    logic [NE * IDX_W - 1:0] d_idx;
    if (RUNTIME_W == 0) begin : g_rom
        // ROMs with the bitstream's initial contents; ROM_BLOCK: in block RAM (rom_style
        // "block": winoforge.hw.build.step_weight_roms_to_bram), else where synthesis maps them.
        // ROM_PIPE = 0: one synchronous read at w_raddr into stage D (d_w, d_idx).  ROM_PIPE = 1:
        // the ROMs read the next issue's line (w_raddr_nx) every cycle into their own read register
        // (r_w, r_idx: a block RAM's output register), and stage D takes it from there, so d_w/d_idx
        // hold the same line in every cycle.  A ROM in block RAM, deeper than one block RAM at its
        // width, is split by depth behind a LUT mux; with that mux straight in front of the LUT
        // multipliers ABC mapped the lanes for depth (twice their LUTs on 8x8 SubRow-8 layers).  A ROM
        // in logic keeps one register: with two, Yosys mapped such ROMs 8-84 % larger (README).
        // vfull is clear the first cycle after reset, so r_w holds wrom[0] before the first issue.
        localparam bit AHEAD = ROM_PIPE != 0;
        logic [W_AW - 1:0] w_raddr_nx, rom_addr;  // w_raddr after this cycle: the next issue's line
        assign w_raddr_nx = !p_issue ? w_raddr : p_last ? '0 : w_raddr + 1'b1;
        assign rom_addr = AHEAD ? w_raddr_nx : w_raddr;
        logic [NE * W_W - 1:0] r_w;
        logic rom_en;
        assign rom_en = AHEAD || pipe_en;
        if (ROM_BLOCK != 0) begin : g_wrom_block
            (* rom_style = "block" *) logic [NE * W_W - 1:0] wrom [WDEPTH];
            if (VALUES_FILE != "") begin : g_wrom_init
                initial $readmemh(VALUES_FILE, wrom);
            end
            always_ff @(posedge ap_clk) if (rom_en) r_w <= wrom[rom_addr];
        end else begin : g_wrom_auto
            logic [NE * W_W - 1:0] wrom [WDEPTH];
            if (VALUES_FILE != "") begin : g_wrom_init
                initial $readmemh(VALUES_FILE, wrom);
            end
            always_ff @(posedge ap_clk) if (rom_en) r_w <= wrom[rom_addr];
        end
        if (AHEAD) begin : g_w_pipe
            always_ff @(posedge ap_clk) if (pipe_en) d_w <= r_w;
        end else begin : g_w_direct
            assign d_w = r_w;
        end
        if (HAS_IDX != 0) begin : g_idx
            logic [NE * IDX_W - 1:0] r_idx;
            if (ROM_BLOCK != 0) begin : g_irom_block
                (* rom_style = "block" *) logic [NE * IDX_W - 1:0] irom [WDEPTH];
                if (INDICES_FILE != "") begin : g_irom_init
                    initial $readmemh(INDICES_FILE, irom);
                end
                always_ff @(posedge ap_clk) if (rom_en) r_idx <= irom[rom_addr];
            end else begin : g_irom_auto
                logic [NE * IDX_W - 1:0] irom [WDEPTH];
                if (INDICES_FILE != "") begin : g_irom_init
                    initial $readmemh(INDICES_FILE, irom);
                end
                always_ff @(posedge ap_clk) if (rom_en) r_idx <= irom[rom_addr];
            end
            if (AHEAD) begin : g_idx_pipe
                always_ff @(posedge ap_clk) if (pipe_en) d_idx <= r_idx;
            end else begin : g_idx_direct
                assign d_idx = r_idx;
            end
        end else begin : g_no_idx
            assign d_idx = '0;
        end
        assign w_tready = 1'b0;
        assign w_loaded = 1'b1;
        logic unused_w;
        assign unused_w = &{1'b0, w_tvalid, w_tdata};
    end else begin : g_ram
        // RAM written by the weight stream: NCOL column memories of LOAD_W bits, column c
        // holding bits [c*LOAD_W +: LOAD_W] of every line.  The PE array starts once the
        // first complete set is in (w_loaded); a new set may be written between frames.
        localparam int VAL_W  = NE * W_W;
        localparam int LINE_W = VAL_W + ((HAS_IDX != 0) ? NE * IDX_W : 0);
        localparam int NCOL   = (LINE_W + LOAD_W - 1) / LOAD_W;
        localparam int COL_W  = (NCOL > 1) ? $clog2(NCOL) : 1;
        logic [COL_W - 1:0] ld_col;
        logic [W_AW - 1:0]  ld_addr;
        logic ld_fire, ld_done;
        logic [NCOL * LOAD_W - 1:0] line;
        assign w_tready = ap_rst_n;
        assign ld_fire  = w_tvalid && w_tready;
        assign ld_done  = ld_fire && (ld_col == COL_W'(NCOL - 1)) && (ld_addr == W_AW'(WDEPTH - 1));
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                ld_col <= '0; ld_addr <= '0; w_loaded <= 1'b0;
            end else if (ld_fire) begin
                if (ld_col != COL_W'(NCOL - 1)) ld_col <= ld_col + 1'b1;
                else begin
                    ld_col <= '0;
                    ld_addr <= (ld_addr == W_AW'(WDEPTH - 1)) ? '0 : ld_addr + 1'b1;
                end
                if (ld_done) w_loaded <= 1'b1;
            end
        end
        for (genvar c = 0; c < NCOL; c++) begin : g_col
            if (URAM != 0) begin : g_uram
                (* ram_style = "ultra" *) logic [LOAD_W - 1:0] mem [WDEPTH];
                always_ff @(posedge ap_clk) begin
                    if (ld_fire && ld_col == COL_W'(c)) mem[ld_addr] <= w_tdata;
                    if (pipe_en) line[c * LOAD_W +: LOAD_W] <= mem[w_raddr];
                end
            end else begin : g_ram_auto
                logic [LOAD_W - 1:0] mem [WDEPTH];
                always_ff @(posedge ap_clk) begin
                    if (ld_fire && ld_col == COL_W'(c)) mem[ld_addr] <= w_tdata;
                    if (pipe_en) line[c * LOAD_W +: LOAD_W] <= mem[w_raddr];
                end
            end
        end
        assign d_w = line[VAL_W - 1:0];
        if (HAS_IDX != 0) begin : g_idx
            assign d_idx = line[VAL_W +: NE * IDX_W];
        end else begin : g_no_idx
            assign d_idx = '0;
        end
        if (NCOL * LOAD_W > LINE_W) begin : g_pad
            logic unused_pad;
            assign unused_pad = &{1'b0, line[NCOL * LOAD_W - 1:LINE_W]};
        end
    end

    // stage D: operands at the dots
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) d_valid <= 1'b0;
        else if (pipe_en) d_valid <= p_issue;
        if (pipe_en) begin
            d_g <= p_g; d_first <= (p_s == '0); d_last <= (p_s == SF_W'(SF - 1));
        end
    end

    logic [POS * PE - 1:0] dot_in_ready, dot_out_valid;
    logic [ACC_W - 1:0] dot_sum [POS][PE];
    logic col_ready;
    for (genvar j = 0; j < POS; j++) begin : g_pos
        logic [VWORD - 1:0] v_sel;
        always_comb begin
            // group 0's bank unless another group is named: no '0 default, which a G that is not a power
            // of two (d_g never reaching 2**G_W - 1) would turn into an AND gate on every bit
            v_sel = v_rd[j % NB];
            for (int g = 1; g < G; g++) if (d_g == G_W'(g)) v_sel = v_rd[(g * POS + j) % NB];
        end
        for (genvar p = 0; p < PE; p++) begin : g_pe
            localparam int E0 = (j * PE + p) * LANES;
            srbs_dot #(
                .SIMD(SIMD), .SUBROW(SUBROW), .KEEP(KEEP), .V_W(V_W), .W_W(W_W), .W_SIGNED(W_SIGNED),
                .IDX_W(IDX_W), .PROD_W(PROD_W), .SUM_W(SUM_W), .ACC_W(ACC_W), .MUL_REG(1), .TREE_REG_EVERY(1),
                .MUL_LUT(MUL_LUT)
            ) u_dot (
                .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
                .in_valid(d_valid), .in_ready(dot_in_ready[j * PE + p]),
                .in_first(d_first), .in_last(d_last),
                .in_v(v_sel), .in_w(d_w[E0 * W_W +: LANES * W_W]), .in_idx(d_idx[E0 * IDX_W +: LANES * IDX_W]),
                .out_valid(dot_out_valid[j * PE + p]), .out_ready(col_ready), .out_sum(dot_sum[j][p])
            );
        end
    end
    assign dot_ready = &dot_in_ready;  // the dots run in lockstep

    // ------------------------------------------------------------------ M collector
    logic [G_W - 1:0] c_g;
    logic col_fire, mf_valid, mf_take, mf_load, ow_ready;
    logic [ACC_W - 1:0] mcol [T2][PE];
    logic [ACC_W - 1:0] mf [PE][T][T];  // the complete M of PE output channels: rows a, columns b
    logic mf_shift;                     // serial transform: row 0 consumed, the rows move up
    assign col_ready = (c_g != G_W'(G - 1)) || !mf_valid || mf_take;
    assign col_fire  = (&dot_out_valid) && col_ready;
    assign mf_load   = col_fire && (c_g == G_W'(G - 1));
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            c_g <= '0;
            mf_valid <= 1'b0;
        end else begin
            if (mf_take) mf_valid <= 1'b0;
            if (col_fire) begin
                c_g <= (c_g == G_W'(G - 1)) ? '0 : c_g + 1'b1;
                if (mf_load) mf_valid <= 1'b1;
            end
        end
        for (int xi = 0; xi < T2; xi++) begin
            for (int p = 0; p < PE; p++) begin
                if (col_fire && c_g == G_W'(xi / POS)) mcol[xi][p] <= dot_sum[xi % POS][p];
                if (mf_load)
                    mf[p][xi / T][xi % T] <= (xi / POS == G - 1) ? dot_sum[xi % POS][p] : mcol[xi][p];
                else if (mf_shift && xi < T2 - T)
                    mf[p][xi / T][xi % T] <= mf[p][xi / T + 1][xi % T];
            end
        end
    end

    // ------------------------------------------------------------------ output transforms
    // ow_adv: one output fold of a tile is complete in the output buffer;
    // ow_col_we[j]: column j of the m x m output tile is written this cycle (ydata)
    logic ow_adv;
    logic [M - 1:0] ow_col_we;
    logic [OUT_W - 1:0] ydata [PE][M][M];
    logic band_end_now;
    logic ow_half;
    logic [1:0] bfull;           // output-buffer bands complete, not yet streamed
    if (OTF_SERIAL != 0) begin : g_otf_serial
        // One 1-D A^T unit per PE, T + M steps a tile and output fold: steps a < T take
        // row a of M (Z' = M A, row by row), steps T + j column j of Z' (Y = A^T Z',
        // column j of the output tile).  A fold starts only when its output-buffer band
        // has room, and that holds for the whole fold (only its own last write fills it).
        logic sq_busy, sq_done, sq_start;
        logic [SQ_W - 1:0] sq_step;
        assign sq_done  = sq_busy && sq_step == SQ_W'(T + M - 1);
        assign sq_start = mf_valid && (!sq_busy || sq_done) && !bfull[band_end_now ? !ow_half : ow_half];
        assign mf_take  = sq_busy && sq_step == SQ_W'(T - 1);
        assign mf_shift = sq_busy && sq_step < SQ_W'(T - 1);
        assign ow_adv   = sq_done;
        logic unused_ready;  // room is checked for the next fold's band instead
        assign unused_ready = ow_ready;
        for (genvar j = 0; j < M; j++) begin : g_we
            assign ow_col_we[j] = sq_busy && sq_step == SQ_W'(T + j);
        end
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) sq_busy <= 1'b0;
            else if (sq_start) sq_busy <= 1'b1;
            else if (sq_done) sq_busy <= 1'b0;
            if (sq_start) sq_step <= '0;
            else if (sq_busy) sq_step <= sq_step + 1'b1;
        end
        for (genvar p = 0; p < PE; p++) begin : g_pe
            logic [OMID_W - 1:0] zp [T][M];  // Z' = M A: rows shift in, then columns shift out
            logic [T * OMID_W - 1:0] ux;
            logic [M * OUT_W - 1:0] uy;
            for (genvar a = 0; a < T; a++) begin : g_x
                // row 0 of M (sign extended) in the first pass, column 0 of Z' in the second
                assign ux[a * OMID_W +: OMID_W] = (sq_step < SQ_W'(T))
                    ? OMID_W'($signed(mf[p][0][a])) : zp[a][0];
            end
            winograd_transform_1d #(.M(M), .KIND(1), .IN_W(OMID_W), .IN_SIGNED(1), .OUT_W(OUT_W)) u_otf (
                .x(ux), .y(uy)
            );
            always_ff @(posedge ap_clk) begin
                if (sq_busy && sq_step < SQ_W'(T)) begin
                    for (int a = 0; a < T - 1; a++) for (int j = 0; j < M; j++) zp[a][j] <= zp[a + 1][j];
                    for (int j = 0; j < M; j++) zp[T - 1][j] <= uy[j * OUT_W +: OMID_W];
                end else if (sq_busy) begin
                    for (int a = 0; a < T; a++) for (int j = 0; j < M - 1; j++) zp[a][j] <= zp[a][j + 1];
                end
            end
            for (genvar i = 0; i < M; i++) begin : g_i
                for (genvar j = 0; j < M; j++) begin : g_j
                    assign ydata[p][i][j] = uy[i * OUT_W +: OUT_W];
                end
            end
        end
    end else begin : g_otf_parallel
        logic [PE - 1:0] otf_in_ready, otf_out_valid;
        logic otf_ready, ow_fire;
        assign mf_shift = 1'b0;
        assign mf_take  = mf_valid && otf_ready;
        assign ow_fire  = (&otf_out_valid) && ow_ready;
        assign ow_adv   = ow_fire;
        assign ow_col_we = {M{ow_fire}};
        for (genvar p = 0; p < PE; p++) begin : g_pe
            logic [T2 * ACC_W - 1:0] mtile;
            logic [M * M * OUT_W - 1:0] y;
            for (genvar xi = 0; xi < T2; xi++) begin : g_xi
                assign mtile[xi * ACC_W +: ACC_W] = mf[p][xi / T][xi % T];
            end
            winograd_output_transform #(
                .M(M), .IN_W(ACC_W), .MID_W(OMID_W), .OUT_W(OUT_W), .LATENCY(1)
            ) u_otf (
                .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in_valid(mf_valid), .in_ready(otf_in_ready[p]),
                .in_data(mtile), .out_valid(otf_out_valid[p]), .out_ready(ow_ready), .out_data(y)
            );
            for (genvar i = 0; i < M; i++) begin : g_i
                for (genvar j = 0; j < M; j++) begin : g_j
                    assign ydata[p][i][j] = y[(i * M + j) * OUT_W +: OUT_W];
                end
            end
        end
        assign otf_ready = &otf_in_ready;
    end

    // ------------------------------------------------------------------ output buffer
    logic [CF_W - 1:0] ow_f;
    logic [TC_W - 1:0] ow_tc;
    logic [OE_W - 1:0] woff;     // lane of PE channel 0 in the beat being written
    logic [OBT_W - 1:0] wbase;   // beat being written
    assign ow_ready = !bfull[ow_half];
    assign band_end_now = ow_adv && ow_f == CF_W'(CF - 1) && ow_tc == TC_W'(TW - 1);
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            ow_f <= '0; ow_tc <= '0; ow_half <= 1'b0; woff <= '0; wbase <= '0;
        end else if (ow_adv) begin
            if (ow_f != CF_W'(CF - 1)) begin
                ow_f <= ow_f + 1'b1;
                if (woff + OE_W'(PE) >= OE_W'(OE)) begin woff <= woff + OE_W'(PE) - OE_W'(OE); wbase <= wbase + 1'b1; end
                else woff <= woff + OE_W'(PE);
            end else begin
                ow_f <= '0; woff <= '0; wbase <= '0;
                if (ow_tc != TC_W'(TW - 1)) ow_tc <= ow_tc + 1'b1;
                else begin
                    ow_tc <= '0;
                    ow_half <= !ow_half;
                end
            end
        end
    end

    // reader state
    logic [TR_W - 1:0]  r_tr;
    logic [M_W - 1:0]   r_i, r_xm, o_i, o_j;
    logic [TC_W - 1:0]  r_xd;
    logic [WO_W - 1:0]  r_x;   // r_xd * M + r_xm
    logic [OBT_W - 1:0] r_k;
    logic [CF_W - 1:0]  r_rf;          // OB_LANES: output fold and lane of the beat's first channel
    logic [PE_W - 1:0]  r_rl, o_rl;
    logic r_half, r_ok, r_last, r_row_last, out_en;
    logic [M_W - 1:0] r_rows_m1;
    logic [OB_AW - 1:0] ob_raddr, ob_wrow;
    assign out_en     = !out_tvalid || out_tready;
    assign r_ok       = bfull[r_half];
    assign r_rows_m1  = (r_tr == TR_W'(TH - 1)) ? M_W'(LAST_ROWS - 1) : M_W'(M - 1);
    assign r_row_last = (r_k == OBT_W'(OBEATS - 1)) && (r_x == WO_W'(WO - 1));
    assign r_last     = r_row_last && (r_i == r_rows_m1);
    // x * OB_PIX as the shifts and adds of its set bits: OB_PIX = CF need not be a power of two
    // (OB_LANES), and a '*' by a constant is a DSP to synth_xilinx
    function automatic logic [OB_AW - 1:0] times_pix(input logic [OB_AW - 1:0] x);
        times_pix = '0;
        for (int b = 0; b < OB_AW; b++) if (((OB_PIX >> b) & 1) == 1) times_pix = times_pix + (x << b);
    endfunction
    assign ob_raddr   = times_pix(OB_AW'(r_half) * OB_AW'(TW) + OB_AW'(r_xd)) + OB_AW'(OB_LANES ? 0 : r_k);
    assign ob_wrow    = times_pix(OB_AW'(ow_half) * OB_AW'(TW) + OB_AW'(ow_tc));

    logic [OUT_W - 1:0] ob_rd [M][M][OB_NB];
    for (genvar i = 0; i < M; i++) begin : g_obi
        for (genvar j = 0; j < M; j++) begin : g_obj
            for (genvar e = 0; e < OB_NB; e++) begin : g_obe
                logic [OUT_W - 1:0] mem [OB_D];
                logic               we;
                logic [OB_AW - 1:0] waddr, raddr;
                logic [OUT_W - 1:0] wdata;
                if (OB_LANES) begin : g_lane_read
                    // lane e holds channel f*PE + e at fold f: the beat's channel on this lane is at the
                    // beat's first fold, or the next one for the lanes below the first channel's
                    // (past the last fold: no channel of the beat, any word will do)
                    assign raddr = ob_raddr + OB_AW'(r_rf)
                                   + OB_AW'((PE_W'(e) >= r_rl || r_rf == CF_W'(CF - 1)) ? 1'b0 : 1'b1);
                end else begin : g_beat_read
                    assign raddr = ob_raddr;
                end
                if (OE == PE || OB_LANES) begin : g_direct
                    assign we    = ow_col_we[j];
                    assign waddr = ob_wrow + OB_AW'(ow_f);
                    assign wdata = ydata[e][i][j];
                end else begin : g_rotate
                    logic [OE_W - 1:0] pe_src;
                    always_comb begin
                        pe_src = (OE_W'(e) >= woff) ? OE_W'(e) - woff : OE_W'(e + OE) - woff;
                        // the last fold's padding channels (PE not dividing COUT) are not written
                        we     = ow_col_we[j] && (pe_src < ((LASTN != PE && ow_f == CF_W'(CF - 1)) ? OE_W'(LASTN)
                                                                                                  : OE_W'(PE)));
                        waddr  = ob_wrow + OB_AW'(wbase) + OB_AW'((OE_W'(e) >= woff) ? 0 : 1);
                        wdata  = '0;
                        for (int p = 0; p < PE; p++) if (pe_src == OE_W'(p)) wdata = ydata[p][i][j];
                    end
                end
                always_ff @(posedge ap_clk) begin
                    if (we) mem[waddr] <= wdata;
                    if (out_en) ob_rd[i][j][e] <= mem[raddr];
                end
            end
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            out_tvalid <= 1'b0;
            r_tr <= '0; r_i <= '0; r_xd <= '0; r_xm <= '0; r_x <= '0; r_k <= '0; r_half <= 1'b0;
            r_rf <= '0; r_rl <= '0;
        end else if (out_en) begin
            out_tvalid <= r_ok;
            o_i <= r_i;
            o_j <= r_xm;
            o_rl <= r_rl;
            if (r_ok) begin
                if (r_k != OBT_W'(OBEATS - 1)) begin
                    r_k <= r_k + 1'b1;
                    if (r_rl + PE_W'(OE) >= PE_W'(PE)) begin r_rl <= r_rl + PE_W'(OE) - PE_W'(PE); r_rf <= r_rf + 1'b1; end
                    else r_rl <= r_rl + PE_W'(OE);
                end else begin
                    r_k <= '0; r_rf <= '0; r_rl <= '0;
                    if (!r_row_last) begin
                        r_x <= r_x + 1'b1;
                        if (r_xm != M_W'(M - 1)) r_xm <= r_xm + 1'b1;
                        else begin r_xm <= '0; r_xd <= r_xd + 1'b1; end
                    end else begin
                        r_xm <= '0; r_xd <= '0; r_x <= '0;
                        if (r_i != r_rows_m1) r_i <= r_i + 1'b1;
                        else begin
                            r_i <= '0;
                            r_half <= !r_half;
                            r_tr <= (r_tr == TR_W'(TH - 1)) ? '0 : r_tr + 1'b1;
                        end
                    end
                end
            end
        end
    end
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) bfull <= 2'b00;
        else for (int h = 0; h < 2; h++) begin
            if (band_end_now && ow_half == h[0]) bfull[h] <= 1'b1;
            else if (out_en && r_ok && r_last && r_half == h[0]) bfull[h] <= 1'b0;
        end
    end
    logic [OUT_W - 1:0] ob_px [OB_NB];  // the banks of the output position being read
    always_comb begin
        for (int e = 0; e < OB_NB; e++) ob_px[e] = '0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < M; j++)
                if (o_i == M_W'(i) && o_j == M_W'(j))
                    for (int e = 0; e < OB_NB; e++) ob_px[e] = ob_rd[i][j][e];
    end
    if (OB_LANES) begin : g_out_rotate
        // beat channel e is on lane (o_rl + e) mod PE
        always_comb begin
            out_tdata = '0;
            for (int e = 0; e < OE; e++)
                for (int p = 0; p < PE; p++)
                    if (o_rl + PE_W'(e) == PE_W'(p) || o_rl + PE_W'(e) == PE_W'(p + PE))
                        out_tdata[e * OUT_W +: OUT_W] = ob_px[p];
        end
    end else begin : g_out_beat
        logic unused_rl;  // the beat is bank for bank
        assign unused_rl = &{1'b0, o_rl};
        always_comb begin
            out_tdata = '0;
            for (int e = 0; e < OE; e++) out_tdata[e * OUT_W +: OUT_W] = ob_px[e];
        end
    end
endmodule
